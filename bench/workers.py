"""`python -m bench.workers`: messages handled per second by one worker (workers.runner with a no-op
handler) against the floor any consumer pays, raw `XREADGROUP` + `XACK` in a loop, on the same Redis
in the same run (issue 12: target >= 0.7x).

One local redis-server (devcluster.redis_topology), one stream partition holding N publish-shaped
entries (channel, user, client, ~100-byte JSON data, ts). Each round creates a fresh consumer group
at id 0 and consumes all N: the raw loop reads COUNT 100 and acks each batch with one XACK of its
ids (the cheapest raw loop; a per-entry XACK loop is printed too, for scale); the worker is
workers.runner.Runner in this process (lease, fenced ack script per batch, typed messages, the
lifecycle hook). Rounds alternate; the median of each is reported.

    DJANGO_SETTINGS_MODULE=realtime.settings.test .venv/bin/python -m bench.workers [--messages 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime.settings.test")

KEY = "rtgw:stream:{bench:0}"
BATCH = 100


def fill(client: Any, n: int) -> None:
    data = '{"text": "' + "x" * 80 + '", "n": 1}'
    for start in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(n, start + 1000)):
            pipe.xadd(KEY, {"channel": f"chat:{i % 20}", "user": "u1", "client": "c1", "data": data, "ts": "1"})
        pipe.execute()


def raw_batched(client: Any, group: str, n: int) -> float:
    client.xgroup_create(KEY, group, id="0")
    started = time.perf_counter()
    done = 0
    while done < n:
        [(_, entries)] = client.xreadgroup(group, "c", {KEY: ">"}, count=BATCH)
        client.xack(KEY, group, *[entry_id for entry_id, _ in entries])
        done += len(entries)
    return n / (time.perf_counter() - started)


def raw_per_entry(client: Any, group: str, n: int) -> float:
    client.xgroup_create(KEY, group, id="0")
    started = time.perf_counter()
    done = 0
    while done < n:
        [(_, entries)] = client.xreadgroup(group, "c", {KEY: ">"}, count=BATCH)
        for entry_id, _ in entries:
            client.xack(KEY, group, entry_id)
        done += len(entries)
    return n / (time.perf_counter() - started)


def worker(client: Any, group: str, n: int) -> float:
    from workers.runner import Runner
    from workers.sdk import Message, Worker

    class NoOp(Worker):
        batch = BATCH
        seen = 0

        def on_message(self, channel: str, message: Message) -> None:
            self.seen += 1
            if self.seen == n:
                runner.stop()  # the last one is still acked: stop() lets the entry in hand finish

    NoOp.group = group
    runner = Runner(NoOp(name="bench"), client=client, keys=[KEY], lease_seconds=6.0, max_deliveries=5, block_ms=100)
    started = time.perf_counter()
    runner.run()  # in this thread, as in run_worker; returns after the n-th entry is acked
    elapsed = time.perf_counter() - started
    pending = int(client.xpending(KEY, group)["pending"])
    assert pending == 0, f"{pending} entries left unacked"
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from devcluster.redis_topology import SingleRedis

    with tempfile.TemporaryDirectory() as tmp, SingleRedis(Path(tmp)) as redis_topology:
        redis_topology.start()
        os.environ["REDIS_URL"] = redis_topology.url
        import django

        django.setup()
        from streams.process import blocking_redis

        client = blocking_redis(block_ms=1000)
        fill(client, args.messages)
        rates: dict[str, list[float]] = {"raw XREADGROUP + XACK per batch": [], "raw XREADGROUP + XACK per entry": [],
                                         "worker (no-op handler)": []}  # fmt: skip
        for round_ in range(args.rounds):
            rates["raw XREADGROUP + XACK per batch"].append(raw_batched(client, f"raw{round_}", args.messages))
            rates["worker (no-op handler)"].append(worker(client, f"sdk{round_}", args.messages))
            rates["raw XREADGROUP + XACK per entry"].append(raw_per_entry(client, f"one{round_}", args.messages))
        client.close()
    load = os.getloadavg()[0]
    print(f"{args.messages} entries, 1 partition, {args.rounds} rounds (median), load average {load:.1f}")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    floor = medians["raw XREADGROUP + XACK per batch"]
    for name, rate in medians.items():
        runs = ", ".join(f"{v:,.0f}" for v in rates[name])
        print(f"  {name:34} {rate:>9,.0f} msg/s  ({rate / floor:.2f}x)   runs: {runs}")


if __name__ == "__main__":
    main()
