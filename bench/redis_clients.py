"""`python -m bench.redis_clients`: Redis clients for the event loop, on the publish path's command.

Each candidate runs in its own process on uvloop (as a gunicorn worker does): CONCURRENCY tasks
each XADD a publish-shaped entry (channel, user, client, ~200-byte data, ts; 16 partition keys
with their hash tags) in a loop for SECONDS; the process counts completed XADDs and its own CPU
time. Printed: XADD/s and client CPU us per XADD, each also as a ratio against the hand-written
client (realtime.redis_async) on single Redis measured in the same run; rounds are interleaved
and the median of each candidate is reported. Redis runs as local processes
(devcluster.redis_topology): single, Sentinel (master + replica + 3 sentinels), Cluster (3 + 3).

    DJANGO_SETTINGS_MODULE=realtime.settings.test .venv/bin/python -m bench.redis_clients [--seconds 3] [--rounds 2]

coredis is measured when it is installed in var/coredis-venv (never in .venv):
`python3 -m venv var/coredis-venv && var/coredis-venv/bin/pip install coredis`; its packages are
appended to sys.path of the one child process that measures it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COREDIS = (
    ROOT / "var" / "coredis-venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
)
CONCURRENCY = 200
DATA = b'{"text":"' + b"x" * 180 + b'"}'  # ~200 bytes, as a chat message
# (client, topology): the hand-written client on single Redis first: it is the reference.
CANDIDATES = [
    ("hand-written", "single"),
    ("hand-written", "sentinel"),
    ("hand-written", "cluster"),
    ("hand-written+replicated", "sentinel"),
    ("redis-py", "single"),
    ("redis-py", "sentinel"),
    ("redis-py", "cluster"),
    ("coredis", "single"),
    ("coredis", "sentinel"),
    ("coredis", "cluster"),
]


def _fields(i: int) -> tuple[object, ...]:
    return ("channel", f"chat:room{i % 16}", "user", "42", "client", "0b7d5b3e-5c2a-4c39", "data", DATA,
            "ts", str(int(time.time() * 1000)))  # fmt: skip


def _key(i: int) -> str:
    return f"bench:stream:{{chat:{i % 16}}}"


async def _hand_written(
    url: str, ack: str, module_file: str = ""
) -> tuple[Callable[[int], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    from realtime.redis_async import RedisReplyError, open_client
    from realtime.redis_url import parse

    client: Any
    if module_file:  # another version of realtime/redis_async.py (e.g. `git show REV:...`): one server
        spec = importlib.util.spec_from_file_location("redis_async_other", module_file)
        assert spec is not None
        assert spec.loader is not None
        other = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(other)
        client = other.PipelinedRedis(url, timeout=1.0)
        RedisReplyError = other.RedisReplyError
    else:
        client = open_client(parse(url), timeout=1.0, ack=ack, ack_replicas=1)

    async def xadd(i: int) -> Any:
        reply = await client.submit("XADD", _key(i), "MAXLEN", "~", 10000, "*", *_fields(i))
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    return xadd, client.close


async def _redis_py(url: str, kind: str) -> tuple[Callable[[int], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import Sentinel

    from realtime.redis_url import parse

    location = parse(url)
    client: Any
    if kind == "cluster":
        host, port = location.addresses[0]
        client = RedisCluster(host=host, port=port, socket_timeout=1.0)
    elif kind == "sentinel":
        client = Sentinel(list(location.addresses), socket_timeout=1.0).master_for(
            location.master_name, max_connections=CONCURRENCY + 10
        )
    else:
        client = Redis.from_url(url, socket_timeout=1.0, max_connections=CONCURRENCY + 10)

    async def xadd(i: int) -> Any:
        return await client.execute_command("XADD", _key(i), "MAXLEN", "~", 10000, "*", *_fields(i))

    async def close() -> None:
        await client.aclose()

    return xadd, close


async def _coredis(url: str, kind: str, body: Callable[[Callable[[int], Awaitable[Any]]], Awaitable[None]]) -> None:
    sys.path.append(str(COREDIS))
    import coredis
    from coredis.retry import NoRetryPolicy

    from realtime.redis_url import parse

    location = parse(url)
    host, port = location.addresses[0]
    client: Any
    if kind == "cluster":
        client = coredis.RedisCluster(host=host, port=port, stream_timeout=1.0, retry_policy=NoRetryPolicy())
    elif kind == "sentinel":
        sentinel = coredis.Sentinel(list(location.addresses), stream_timeout=1.0)
        client = sentinel.primary_for(location.master_name)  # Sentinel retries nothing by default
    else:
        client = coredis.Redis(host=host, port=port, stream_timeout=1.0, retry_policy=NoRetryPolicy())

    async def xadd(i: int) -> Any:
        fields = _fields(i)
        return await client.xadd(_key(i), dict(zip(fields[::2], fields[1::2], strict=True)), threshold=10000,
                                 trim_strategy=coredis.PureToken.MAXLEN, trim_operator=coredis.PureToken.APPROXIMATELY)  # fmt: skip

    async with contextlib.AsyncExitStack() as stack:
        if kind == "sentinel":
            await stack.enter_async_context(sentinel)  # coredis 6: every client is a context manager
        await stack.enter_async_context(client)
        await body(xadd)


async def _measure(xadd: Callable[[int], Awaitable[Any]], seconds: float) -> dict[str, float]:
    for i in range(CONCURRENCY):  # warm-up: connections opened, slot maps loaded
        await xadd(i)
    done = 0
    stop = False

    async def worker(n: int) -> None:
        nonlocal done
        i = n
        while not stop:
            await xadd(i)
            done += 1
            i += CONCURRENCY

    cpu, wall = time.process_time(), time.monotonic()
    tasks = [asyncio.ensure_future(worker(n)) for n in range(CONCURRENCY)]
    await asyncio.sleep(seconds)
    stop = True
    await asyncio.gather(*tasks)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return {"ops": done / wall, "cpu_us": cpu / done * 1e6}


def child(client: str, kind: str, url: str, seconds: float) -> dict[str, float]:
    """One candidate in this process."""
    import django
    import uvloop

    django.setup()
    result: dict[str, float] = {}

    async def body(xadd: Callable[[int], Awaitable[Any]]) -> None:
        result.update(await _measure(xadd, seconds))

    async def main() -> None:
        if client == "coredis":
            await _coredis(url, kind, body)
            return
        if client.startswith("hand-written@"):
            xadd, close = await _hand_written(url, "local", client.split("@", 1)[1])
        elif client.startswith("hand-written"):
            xadd, close = await _hand_written(url, "replicated" if client.endswith("replicated") else "local")
        else:
            xadd, close = await _redis_py(url, kind)
        try:
            await body(xadd)
        finally:
            await close()

    uvloop.run(main())
    return result


def _run_child(client: str, kind: str, url: str, seconds: float) -> dict[str, float] | str:
    argv = [sys.executable, "-m", "bench.redis_clients", "--child", client, kind, url, "--seconds", str(seconds)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds * 10 + 60, check=False, cwd=ROOT)
    if done.returncode != 0:
        lines = [line.strip(" |+-") for line in done.stderr.strip().splitlines()]
        return ([line for line in lines if line] or ["failed"])[-1][:120]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated clients, e.g. hand-written,redis-py")
    parser.add_argument(
        "--other",
        default="",
        help="also measure PipelinedRedis from this file (e.g. git show REV:realtime/redis_async.py)",
    )
    parser.add_argument("--child", nargs=3, metavar=("CLIENT", "KIND", "URL"))
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime.settings.test")
    if args.child:
        print(json.dumps(child(*args.child, args.seconds)))
        return
    from devcluster.redis_topology import start_topology

    only = set(filter(None, args.only.split(",")))
    candidates = [c for c in CANDIDATES if not only or c[0] in only or c == CANDIDATES[0]]
    if args.other:
        candidates.insert(1, (f"hand-written@{Path(args.other).resolve()}", "single"))
    if not COREDIS.exists():
        print("coredis: not installed in var/coredis-venv, skipped")
        candidates = [c for c in candidates if c[0] != "coredis"]
    results: dict[tuple[str, str], list[dict[str, float]]] = {c: [] for c in candidates}
    failures: dict[tuple[str, str], str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        topologies = {kind: start_topology(kind, Path(tmp) / kind) for kind in {k for _, k in candidates}}
        try:
            for _ in range(args.rounds):
                for candidate in candidates:
                    got = _run_child(*candidate, topologies[candidate[1]].url, args.seconds)
                    if isinstance(got, str):
                        failures[candidate] = got
                    else:
                        results[candidate].append(got)
        finally:
            for topology in topologies.values():
                topology.stop()
    _report(results, failures, args)


def _report(
    results: dict[tuple[str, str], list[dict[str, float]]], failures: dict[tuple[str, str], str], args: Any
) -> None:
    def median(candidate: tuple[str, str], what: str) -> float:
        return statistics.median(r[what] for r in results[candidate])

    reference = CANDIDATES[0]
    base_ops, base_cpu = median(reference, "ops"), median(reference, "cpu_us")
    print(f"{CONCURRENCY} XADDs in flight from one uvloop, {args.seconds:g} s x {args.rounds} rounds, medians; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'client':<26}{'topology':<10}{'XADD/s':>9}{'x ref':>8}{'CPU us/op':>11}{'x ref':>8}")
    for candidate, runs in results.items():
        name = "hand-written (--other)" if candidate[0].startswith("hand-written@") else candidate[0]
        if not runs:
            print(f"{name:<26}{candidate[1]:<10}  failed: {failures.get(candidate, '?')}")
            continue
        ops, cpu = median(candidate, "ops"), median(candidate, "cpu_us")
        print(f"{name:<26}{candidate[1]:<10}{ops:>9,.0f}{ops / base_ops:>7.2f}x{cpu:>11.1f}{cpu / base_cpu:>7.2f}x")


if __name__ == "__main__":
    main()
