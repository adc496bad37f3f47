"""`python -m bench.workers_lifecycle`: what channel-lifecycle bookkeeping (workers/lifecycle.py)
costs a backend worker, with 10 and with 10,000 active channels in one partition.

    DJANGO_SETTINGS_MODULE=realtime.settings.test .venv/bin/python -m bench.workers_lifecycle

Its own redis-server on a free loopback port (stopped at the end); no gateway. Per channel count,
in rounds that alternate the counts:
- before(), hot path: a message of a channel already active, no member, no idle gap (the common
  case: no Redis command), microseconds per call, over --messages calls spread over every channel;
- before(), first message of a channel (one script call; also what a join or leave costs);
- due() per tick: a tick with nothing expired and nothing touched since the last one, and the
  tick after --messages messages (it writes the activity of the channels they touched: all 10, or
  all 10,000), also divided by the messages;
- due() claiming 10 expired channels.
The goal (issue 12): the cost per message and per tick must not grow with the number of channels;
the ratio 10,000 / 10 is printed for each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import django

KEY = "rtgw:stream:{bench:0}"
GROUP = "bench"
T = 1_700_000_000_000


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    channel: str
    user: str = "u"
    client: str = "c"
    type: str = "message"


def _us(seconds: float, calls: int) -> float:
    return seconds / calls * 1e6


def one_round(client: object, channels: int, messages: int) -> dict[str, float]:
    from workers.lifecycle import Lifecycle

    client.flushdb()  # type: ignore[attr-defined]
    client.xgroup_create(KEY, GROUP, id="0", mkstream=True)  # type: ignore[attr-defined]
    life = Lifecycle(client, key=KEY, group=GROUP, idle_seconds=30)  # type: ignore[arg-type]
    names = [f"room:{i}" for i in range(channels)]
    life.before(Entry(f"{T - 1}-0", "warm-up", type="join"))  # loads both scripts; a member: never idle
    life.due(T - 1)
    started = time.perf_counter()
    for i, name in enumerate(names):
        life.before(Entry(f"{T}-{i}", name))
    first = _us(time.perf_counter() - started, channels)
    # Hot path: one message per call, round robin over every channel; the clock moves 1 ms per 1,000.
    batch = [Entry(f"{T + 1 + i // 1000}-{i % 1000}", names[i % channels]) for i in range(messages)]
    started = time.perf_counter()
    for entry in batch:
        life.before(entry)
    hot = _us(time.perf_counter() - started, messages)
    now = T + 60_000 // 10  # 6 s: nothing is idle yet
    started = time.perf_counter()
    life.due(now)
    after_messages = _us(time.perf_counter() - started, 1)
    ticks = 200
    started = time.perf_counter()
    for i in range(ticks):
        life.due(now + i)
    quiet = _us(time.perf_counter() - started, ticks)
    # 10 channels expire: their last activity set back to T (everyone else's is later), then the
    # tick at T + 30 s claims exactly them.
    client.zadd(f"{life.base}:idle", {name: T for name in names[:10]})  # type: ignore[attr-defined]
    started = time.perf_counter()
    claimed = life.due(T + 30_000)
    expire = _us(time.perf_counter() - started, 1)
    assert len(claimed) == 10, len(claimed)
    return {"before_hot_us": hot, "before_first_us": first, "due_quiet_us": quiet,
            "due_after_messages_us": after_messages, "  per message": after_messages / messages,
            "due_expire_10_us": expire}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--channels", type=int, nargs=2, default=[10, 10_000])
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime.settings.test")
    django.setup()
    import redis

    from tests.support.procs import start_redis

    with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as tmp:
        proc, port = start_redis(Path(tmp))
        try:
            client = redis.Redis(port=port, socket_timeout=10)
            results: dict[int, list[dict[str, float]]] = {n: [] for n in args.channels}
            for _ in range(args.rounds):
                for n in args.channels:
                    results[n].append(one_round(client, n, args.messages))
            client.close()
        finally:
            proc.stop()
    small, large = args.channels
    print(f"workers.lifecycle, {args.rounds} rounds, {args.messages:,} messages per round; medians (us)")
    print(f"{'measure':<24}{small:>12,}{large:>12,}   ratio {large:,}/{small:,}")
    median: Callable[[int, str], float] = lambda n, m: statistics.median(r[m] for r in results[n])  # noqa: E731
    for measure in results[small][0]:
        a, b = median(small, measure), median(large, measure)
        print(f"{measure:<24}{a:>12.3f}{b:>12.3f}   {b / a:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
