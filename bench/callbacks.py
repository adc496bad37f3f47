"""Publish-callback throughput: our gateway against the baselines, one target at a time.

Each target is started on a free port against the same private Redis (emptied before it), probed
with one request whose answer must be the protocol's, warmed up, loaded with wrk, and checked: every
successful publish must have added exactly one stream entry (plus at most the requests wrk had in
flight when it stopped, which it never counts), and no answer may be non-2xx.
"""

from __future__ import annotations

import base64
import http.client
import json
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis

from bench.loadgen import LoadResult, run_wrk
from bench.servers import CpuTicks, Server, connections_per_process, free_port
from bench.targets import ROOT, Context, Secrets, Target, naive_env

STREAM_KEYS = "rtgw:stream:{chat:*}"
CLIENT_ID = "5d3b2f4e-7c1a-4e8b-9f60-2a1d3c4b5e6f"


PUBLICATION = b'{"text":"hello"}'


def publish_body(*, binary_encoding: bool = True) -> bytes:
    """Exactly what Centrifugo v6 POSTs to the publish proxy for `{"text":"hello"}` on chat:room1.
    centrifugo/config.json turns the proxy's binary_encoding on, so every publication, JSON ones too,
    arrives base64-encoded in `b64data` with `"encoding":"binary"`; binary_encoding=False is the
    body without it (data as raw JSON), for comparing the two."""
    body: dict[str, object] = {
        "client": CLIENT_ID,
        "transport": "websocket",
        "protocol": "json",
        "encoding": "binary" if binary_encoding else "json",
        "user": "42",
        "channel": "chat:room1",
    }
    if binary_encoding:
        body["b64data"] = base64.b64encode(PUBLICATION).decode()
    else:
        body["data"] = json.loads(PUBLICATION)
    body["meta"] = {"roles": []}
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Settings:
    connections: int = 32
    duration_s: int = 6
    warmup_s: int = 2
    rounds: int = 3  # each target is started this many times, interleaved with the others


@dataclass(frozen=True)
class Round:
    """One start of one target: warm-up, measured load, store check."""

    load: LoadResult
    stored: int  # stream entries added from the first warm-up request to the end
    answered_ok: int  # 2xx answers wrk counted, warm-up included
    in_flight_bound: int  # requests wrk may have sent but not counted when it stopped (2 runs)
    server_cpu_s: float  # the server's processes, over the measured run
    redis_cpu_s: float
    machine_busy: float  # 0..1 over the measured run, every process on the box
    steal: float  # 0..1: CPU time the hypervisor took away (noise from outside this machine)
    connection_split: tuple[int, ...]  # wrk's connections per server process, most first

    @property
    def unaccounted(self) -> int:
        return self.stored - self.answered_ok

    def store_ok(self, stores: bool) -> bool:
        if not stores:
            return self.stored == 0
        return 0 <= self.unaccounted <= self.in_flight_bound


@dataclass
class Outcome:
    """A target over all its rounds: medians of the per-round figures, sums of the counts."""

    target: Target
    rounds: list[Round] = field(default_factory=list)

    def _median(self, value: Callable[[Round], float]) -> float:
        return statistics.median(value(r) for r in self.rounds)

    @property
    def rps(self) -> float:
        return self._median(lambda r: r.load.rps)

    @property
    def p50_ms(self) -> float:
        return self._median(lambda r: r.load.p50_ms)

    @property
    def p99_ms(self) -> float:
        return self._median(lambda r: r.load.p99_ms)

    @property
    def requests(self) -> int:
        return sum(r.load.requests for r in self.rounds)

    @property
    def server_cpu_us(self) -> float:
        """Server CPU per request: the processes' user+system time over the requests they answered."""
        return sum(r.server_cpu_s for r in self.rounds) / max(self.requests, 1) * 1e6

    @property
    def redis_cpu_us(self) -> float:
        return sum(r.redis_cpu_s for r in self.rounds) / max(self.requests, 1) * 1e6

    @property
    def wrk_cpu_us(self) -> float:
        return sum(r.load.wrk_cpu_s for r in self.rounds) / max(self.requests, 1) * 1e6

    @property
    def machine_busy(self) -> float:
        return statistics.fmean(r.machine_busy for r in self.rounds)

    @property
    def steal(self) -> float:
        return statistics.fmean(r.steal for r in self.rounds)

    @property
    def errors(self) -> int:
        return sum(r.load.non_2xx + r.load.socket_errors for r in self.rounds)

    @property
    def store_ok(self) -> bool:
        return all(r.store_ok(self.target.stores) for r in self.rounds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.name,
            "summary": self.target.summary,
            "processes": self.target.processes,
            "rps_median": round(self.rps, 1),
            "rps_rounds": [round(r.load.rps, 1) for r in self.rounds],
            "p50_ms_median": self.p50_ms,
            "p99_ms_median": self.p99_ms,
            "server_cpu_us_per_request": round(self.server_cpu_us, 1),
            "redis_cpu_us_per_request": round(self.redis_cpu_us, 1),
            "wrk_cpu_us_per_request": round(self.wrk_cpu_us, 1),
            "machine_busy": round(self.machine_busy, 3),
            "steal": round(self.steal, 3),
            "non_2xx_and_socket_errors": self.errors,
            "store_check_ok": self.store_ok,
            "rounds": [
                {
                    **r.load.as_dict(),
                    "stream_entries_added": r.stored,
                    "successful_requests_incl_warmup": r.answered_ok,
                    "stored_minus_successful": r.unaccounted,
                    "server_cpu_s": round(r.server_cpu_s, 3),
                    "redis_cpu_s": round(r.redis_cpu_s, 3),
                    "machine_busy": round(r.machine_busy, 3),
                    "steal": round(r.steal, 3),
                    "connections_per_process": list(r.connection_split),
                }
                for r in self.rounds
            ],
        }


def stored_entries(client: redis.Redis) -> int:
    """Entries ever added to the chat streams. XINFO's entries-added (Redis >= 7) ignores MAXLEN
    trimming, which a long run at Node's rate would otherwise hit; XLEN is the fallback."""
    total = 0
    for key in client.scan_iter(match=STREAM_KEYS, count=1000):
        info = client.xinfo_stream(key)
        total += int(info.get("entries-added", info["length"]))
    return total


def settled_entries(store: Store, *, timeout: float = 5.0) -> int:
    """The count once the server has finished what wrk left in flight."""
    last = store.entries()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = store.entries()
        if now == last:
            return now
        last = now
    return last


class Store(Protocol):
    """The Redis a target writes to, as the measurement sees it (one server, or a whole topology)."""

    def flush(self) -> None: ...
    def entries(self) -> int: ...
    def cpu_seconds(self) -> float: ...


@dataclass(frozen=True)
class RedisStore:
    """One redis-server (the benchmark's private one)."""

    client: redis.Redis

    def flush(self) -> None:
        self.client.flushdb()

    def entries(self) -> int:
        return stored_entries(self.client)

    def cpu_seconds(self) -> float:
        return redis_cpu(self.client)


def probe(port: int, target: Target, body: bytes, secret: str) -> None:
    """One request, answered the way Centrifugo expects, before any load."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json", "X-Centrifugo-Proxy-Secret": secret}
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"{target.name}: probe answered {response.status}: {raw[:300]!r}")
    answer = json.loads(raw)
    if "result" not in answer or (target.stores and "stream_id" not in answer["result"].get("tags", {})):
        raise RuntimeError(f"{target.name}: probe answer is not a stored publish result: {answer}")


def measure(target: Target, ctx: Context, store: Store, settings: Settings) -> Round:
    body = publish_body(binary_encoding=target.binary_encoding)
    store.flush()
    server = target.server(ctx)
    server.start()
    try:
        probe(server.port, target, body, ctx.secrets.proxy)
        url = f"http://127.0.0.1:{server.port}{target.path}"
        before = store.entries()
        warm = run_wrk(
            url, body=body, secret=ctx.secrets.proxy, connections=settings.connections, duration_s=settings.warmup_s
        )
        cpu0, redis0, ticks0 = server.cpu_seconds(), store.cpu_seconds(), CpuTicks.now()
        split: list[int] = []
        # Once wrk's connections are up: how the server's processes share them.
        probe_split = threading.Timer(
            min(1.0, settings.duration_s / 2), lambda: split.extend(connections_per_process(server.port))
        )
        probe_split.start()
        load = run_wrk(
            url, body=body, secret=ctx.secrets.proxy, connections=settings.connections, duration_s=settings.duration_s
        )
        probe_split.join()
        cpu1, redis1, ticks1 = server.cpu_seconds(), store.cpu_seconds(), CpuTicks.now()
        stored = settled_entries(store) - before
    finally:
        server.stop()
    return Round(
        load=load,
        stored=stored,
        answered_ok=warm.requests - warm.non_2xx + load.requests - load.non_2xx,
        in_flight_bound=2 * settings.connections,
        server_cpu_s=cpu1 - cpu0,
        redis_cpu_s=redis1 - redis0,
        machine_busy=ticks1.share_since(ticks0)[0],
        steal=ticks1.share_since(ticks0)[1],
        connection_split=tuple(split),
    )


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def prepare_databases(ctx: Context) -> None:
    """Migrated SQLite databases: the gateway's (its migration ships the `chat:*` rules) and the naive one's."""
    manage = [str(ctx.venv_bin / "python"), str(ROOT / "manage.py"), "migrate", "--no-input", "-v", "0"]
    for env in (ctx.gateway_env("realtime.settings.production"), {**ctx.base_env(), **naive_env(ctx)}):
        subprocess.run(manage, cwd=ROOT, env=env, check=True, timeout=300)


@contextmanager
def environment(*, var_dir: Path, run_dir: Path) -> Iterator[tuple[Context, redis.Redis]]:
    """A private Redis on a free port and migrated SQLite databases, for the length of the block."""
    log_dir = var_dir / "logs"
    with tempfile.TemporaryDirectory(prefix="rtgw-bench-") as tmp:
        work = Path(tmp)
        redis_port = free_port()
        ctx = Context(
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
            secrets=Secrets(),
            work_dir=work,
            log_dir=log_dir,
            run_dir=run_dir,
            venv_bin=ROOT / ".venv" / "bin",
        )
        redis_server = Server(
            "redis",
            # No persistence: the benchmark measures the callback path, not the disk.
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            ctx.base_env(),
            redis_port,
            log_dir,
            run_dir,
            work,
        )
        redis_server.start()
        client = redis.Redis.from_url(ctx.redis_url)
        try:
            prepare_databases(ctx)
            yield ctx, client
        finally:
            client.close()
            redis_server.stop()


def run(
    targets: Sequence[Target], settings: Settings, ctx: Context, stores: Callable[[Target], Store]
) -> list[Outcome]:
    """Every target `settings.rounds` times, round-robin, one at a time; `stores` gives the Redis
    each target writes to."""
    outcomes = [Outcome(target) for target in targets]
    for n in range(settings.rounds):
        for outcome in outcomes:
            one = measure(outcome.target, ctx, stores(outcome.target), settings)
            outcome.rounds.append(one)
            print(
                f"    round {n + 1}/{settings.rounds} {outcome.target.name:<20} {one.load.rps:>7.0f} req/s", flush=True
            )
    return outcomes
