"""`scripts/bench.sh --only topologies`: the publish callback on one Redis, on Sentinel and on Redis
Cluster, with REDIS_ACK=local and =replicated, in one run (issue 11).

The gateway as shipped (bench/targets.py's `ours`: gunicorn, the shipped worker count, production
settings) is started once per target and round with its REDIS_URL pointing at one of three
topologies (devcluster/redis_topology.py), all running for the whole benchmark so that the rounds
interleave the targets: a single server, a master + replica + 3 sentinels, a 3-master / 3-replica
Cluster. Every server runs as the compose file runs Redis (AOF, fsync every second), so the
topologies differ only in how the gateway reaches them and what REDIS_ACK waits for. Load and the
store check are bench/callbacks.py's: wrk POSTs Centrifugo's exact publish body for `chat:room1`,
and every 2xx must have added exactly one stream entry (counted on every master).
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench import callbacks, report, targets
from bench.callbacks import Outcome, Round
from devcluster.redis_topology import ClusterRedis, RedisTopology, SentinelRedis, SingleRedis

BASELINE = "single-local"
KINDS: dict[str, type[RedisTopology]] = {"single": SingleRedis, "sentinel": SentinelRedis, "cluster": ClusterRedis}
# (topology, REDIS_ACK): one Redis has no replica to wait for, so it runs `local` only.
TARGETS = (("single", "local"), ("sentinel", "local"), ("sentinel", "replicated"), ("cluster", "local"),
           ("cluster", "replicated"))  # fmt: skip


@dataclass
class TopologyStore:
    """A topology as bench/callbacks.py's Store: entries counted on every master, Redis CPU summed
    over every server (masters and replicas: replication is part of the cost)."""

    topology: RedisTopology
    _clients: dict[int, redis.Redis] = field(default_factory=dict)

    def _client(self, port: int) -> redis.Redis:
        if port not in self._clients:
            self._clients[port] = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
        return self._clients[port]

    def masters(self) -> list[int]:
        topology = self.topology
        if isinstance(topology, ClusterRedis):
            return [m["port"] for m in topology.masters()]
        if isinstance(topology, SentinelRedis):
            port = topology.master_port()
            if port is None:
                raise RuntimeError("no sentinel names a master")
            return [port]
        assert isinstance(topology, SingleRedis)
        return [topology.server.port]

    def flush(self) -> None:
        for port in self.masters():
            self._client(port).flushall()

    def entries(self) -> int:
        return sum(callbacks.stored_entries(self._client(port)) for port in self.masters())

    def cpu_seconds(self) -> float:
        return sum(callbacks.redis_cpu(self._client(server.port)) for server in self.topology.servers)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def target(kind: str, ack: str, url: str) -> targets.Target:
    return targets.Target(
        f"{kind}-{ack}",
        "gateway",
        f"ours on {kind} Redis ({url.split('://', 1)[0]}), REDIS_ACK={ack}",
        env={"REDIS_URL": url, "REDIS_ACK": ack},
        processes=targets.OURS.processes,
    )


@contextlib.contextmanager
def topologies(directory: Path, kinds: Sequence[str]) -> Iterator[dict[str, RedisTopology]]:
    started: dict[str, RedisTopology] = {}
    try:
        for kind in dict.fromkeys(kinds):
            print(f"   starting Redis {kind} ...", flush=True)
            started[kind] = KINDS[kind](directory / kind).start()
        yield started
    finally:
        for topology in started.values():
            topology.stop()


def _rps(r: Round) -> float:
    return r.load.rps


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(outcomes: Sequence[Outcome]) -> str:
    by_name = {o.target.name: o for o in outcomes}
    base = by_name.get(BASELINE)
    head = (
        f"{'target':<20} {'req/s':>6} {'(min-max)':>11} {'p50 ms':>6} {'p99 ms':>6} {'vs single':>9} "
        f"{'vs local':>8} {'cpu us/req':>10} {'cpu vs single':>13} {'redis us':>8} {'busy/steal':>10} {'errors':>6} "
        f"{'stored':>6}"
    )
    lines = [head, "-" * len(head)]
    for o in outcomes:
        local = by_name.get(o.target.name.replace("-replicated", "-local"))
        spread = f"{min(r.load.rps for r in o.rounds):.0f}-{max(r.load.rps for r in o.rounds):.0f}"
        vs_single = report.paired(o, base, _rps) if base is not None and base is not o else None
        vs_local = report.paired(o, local, _rps) if local is not None and local is not o else None
        cpu_vs_single = o.server_cpu_us / base.server_cpu_us if base is not None and base.server_cpu_us else None
        lines.append(
            f"{o.target.name:<20} {o.rps:>6.0f} {spread:>11} {o.p50_ms:>6.1f} {o.p99_ms:>6.1f} {_x(vs_single):>9} "
            f"{_x(vs_local):>8} {o.server_cpu_us:>10.0f} {_x(cpu_vs_single):>13} {o.redis_cpu_us:>8.1f} "
            f"{f'{o.machine_busy:.0%}/{o.steal:.0%}':>10} {o.errors:>6} {'ok' if o.store_ok else 'WRONG':>6}"
        )
    return "\n".join(lines)


def headlines(outcomes: Sequence[Outcome]) -> list[str]:
    by_name = {o.target.name: o for o in outcomes}
    lines = []
    for name in ("sentinel-local", "cluster-local"):
        if name in by_name and BASELINE in by_name:
            one, base = by_name[name], by_name[BASELINE]
            ratio = report.paired(one, base, _rps)
            verdict = "meets" if ratio is not None and ratio >= 0.9 else "MISSES"
            lines.append(
                f"{name} / {BASELINE}: throughput {_x(ratio)} ({verdict} the 0.9x target), gateway CPU per "
                f"publish {_x(one.server_cpu_us / base.server_cpu_us if base.server_cpu_us else None)}"
            )
    for kind in ("sentinel", "cluster"):
        rep, loc = by_name.get(f"{kind}-replicated"), by_name.get(f"{kind}-local")
        if rep is not None and loc is not None:
            lines.append(
                f"{kind}: replicated / local: throughput {_x(report.paired(rep, loc, _rps))}, "
                f"p50 {_x(report.paired(rep, loc, lambda r: r.load.p50_ms))}, "
                f"Redis CPU per request {rep.redis_cpu_us:.1f} vs {loc.redis_cpu_us:.1f} us"
            )
    lines.append(f"non-2xx answers and socket errors, all targets and rounds: {sum(o.errors for o in outcomes)}")
    lines += [f"STORE CHECK FAILED for {o.target.name}" for o in outcomes if not o.store_ok]
    return lines


def run(settings: callbacks.Settings, var_dir: Path, run_dir: Path, names: Sequence[str] = ()) -> dict[str, Any]:
    """`names`: a subset of the targets (e.g. single-local,cluster-local); default all."""
    pairs = [(kind, ack) for kind, ack in TARGETS if not names or f"{kind}-{ack}" in names]
    unknown = set(names) - {f"{kind}-{ack}" for kind, ack in TARGETS}
    if unknown or not pairs:
        raise SystemExit(f"unknown topology targets {sorted(unknown)}; known: {[f'{k}-{a}' for k, a in TARGETS]}")
    print(
        f"\n== Publish callback on Redis topologies: {settings.connections} keep-alive connections, "
        f"{settings.warmup_s} s warm-up + {settings.duration_s} s per target and round, {settings.rounds} rounds =="
    )
    print("   every Redis server: AOF, fsync every second (as deployed); all topologies run throughout.")
    with (
        callbacks.environment(var_dir=var_dir, run_dir=run_dir) as (ctx, _),
        tempfile.TemporaryDirectory(prefix="rtgw-bench-redis-") as tmp,
        topologies(Path(tmp), [kind for kind, _ in pairs]) as running,
    ):
        stores = {kind: TopologyStore(topology) for kind, topology in running.items()}
        chosen = [target(kind, ack, running[kind].url) for kind, ack in pairs]
        try:
            outcomes = callbacks.run(chosen, settings, ctx, lambda t: stores[t.name.split("-")[0]])
        finally:
            for store in stores.values():
                store.close()
    print()
    print(table(outcomes))
    print("   vs single / vs local: medians of per-round throughput ratios; cpu us/req: the gateway's processes")
    print("   (cpu vs single: that over single-local's; on a busy machine the steadier figure);")
    print("   redis us: every Redis server of the topology (replicas included) per request")
    print()
    lines = headlines(outcomes)
    for line in lines:
        print(line)
    print("\nStore check (entries added on every master vs 2xx answers):")
    for line in report.store_checks(outcomes):
        print("  " + line)
    return {
        "settings": {**dataclasses.asdict(settings), "wrk_threads": 1},
        "headlines": lines,
        **report.as_json(outcomes),
    }
