"""`python -m bench.subrefresh`: what re-checking live subscriptions (SUBSCRIPTION_RECHECK_INTERVAL)
costs, through the whole gateway.

For each interval asked for, the shipped gateway (scripts/run-gateway.sh: Redis, gunicorn and
Centrifugo under supervisord, on free loopback ports) is started with it; centrifuge-python
clients (100 anonymous connections x 100 subscriptions = 10,000 by default, all in this process)
subscribe to `public:bench<j>` and then stay idle. After a settling time (longer than Centrifugo's
default 27 s presence tick, so every configuration is in its steady state) a fixed window measures:
- sub_refresh calls/s answered by the callbacks (`gateway_callbacks_total{kind="sub_refresh"}`);
- user+system CPU, from /proc, of the callback service (gunicorn master and workers), Centrifugo
  and Redis, as a share of one core;
- that no subscription ended (a re-check must never drop a subscriber the rules allow).
Interval 0 is the gateway before re-checks existed (no expire_at; Centrifugo's default 27 s tick).
Bounded: loopback only, a fixed number of clients, every server stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from centrifuge import Client, SubscriptionEventHandler, UnsubscribedContext

from tests.support.gateway import Gateway

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_SUB_REFRESH = re.compile(r'^gateway_callbacks_total\{kind="sub_refresh",outcome="(\w+)"\} ([0-9.e+]+)$', re.M)


@dataclass
class TunedGateway(Gateway):
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.extra}


@dataclass
class Ended(SubscriptionEventHandler):
    count: list[int]

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        self.count[0] += 1


def cpu_by_program(session: int) -> dict[str, float]:
    """CPU seconds (user + system) of the gateway's processes, by program, from /proc."""
    totals = {"callbacks": 0.0, "centrifugo": 0.0, "redis": 0.0}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="ascii", errors="replace")
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state ppid pgrp session ... utime(11) stime(12)
        if int(fields[3]) != session:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        if "gunicorn" in cmdline:
            totals["callbacks"] += cpu
        elif "redis-server" in cmdline:
            totals["redis"] += cpu
        elif "centrifugo" in cmdline and "run.sh" not in cmdline:
            totals["centrifugo"] += cpu
    return totals


def sub_refresh_answers(gateway: Gateway) -> dict[str, float]:
    with urllib.request.urlopen(f"{gateway.callback_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {outcome: float(value) for outcome, value in _SUB_REFRESH.findall(text)}


async def hold_subscriptions(gateway: Gateway, args: argparse.Namespace, interval: int) -> dict[str, float]:
    ended = [0]
    clients: list[Client] = []
    started = time.monotonic()
    for _ in range(args.connections):
        client = Client(gateway.ws_url)  # anonymous: `public:*` lets anyone subscribe
        await client.connect()
        subs = [client.new_subscription(f"public:bench{j}", Ended(ended)) for j in range(args.subs)]
        for sub in subs:
            await sub.subscribe()
        await asyncio.gather(*(sub.ready(timeout=30) for sub in subs))
        clients.append(client)
    total = args.connections * args.subs
    print(f"  {total} subscriptions in {time.monotonic() - started:.1f} s; settling {args.settle} s", flush=True)
    try:
        await asyncio.sleep(args.settle)
        session = os.getsid(gateway.process.popen.pid)  # type: ignore[union-attr]
        cpu0, calls0, ours0, t0 = (
            cpu_by_program(session),
            sub_refresh_answers(gateway),
            time.process_time(),
            time.monotonic(),
        )
        await asyncio.sleep(args.window)
        cpu1, calls1, ours1, t1 = (
            cpu_by_program(session),
            sub_refresh_answers(gateway),
            time.process_time(),
            time.monotonic(),
        )
    finally:
        for client in clients:
            await client.disconnect()
    elapsed = t1 - t0
    calls = {k: calls1.get(k, 0.0) - calls0.get(k, 0.0) for k in calls1}
    row = {
        "interval": interval,
        "subscriptions": total,
        "sub_refresh_per_s": sum(calls.values()) / elapsed,
        "sub_refresh_not_result": sum(v for k, v in calls.items() if k != "result"),
        **{f"{name}_cpu": (cpu1[name] - cpu0[name]) / elapsed for name in cpu0},
        "clients_cpu": (ours1 - ours0) / elapsed,
        "ended": ended[0],
    }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.subrefresh", description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", default="2,0", help="SUBSCRIPTION_RECHECK_INTERVAL values, in order [2,0]")
    parser.add_argument("--engine", choices=["memory", "redis"], default="memory", help="Centrifugo engine [memory]")
    parser.add_argument("--connections", type=int, default=100, help="client connections [100]")
    parser.add_argument("--subs", type=int, default=100, help="subscriptions per connection [100]")
    parser.add_argument("--settle", type=float, default=30, help="seconds before measuring [30]")
    parser.add_argument("--window", type=float, default=30, help="measured seconds [30]")
    args = parser.parse_args(argv)

    rows = []
    for interval in (int(v) for v in args.intervals.split(",")):
        print(f"== SUBSCRIPTION_RECHECK_INTERVAL={interval}, Centrifugo engine {args.engine}", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-subrefresh-") as tmp:
            gateway = TunedGateway(
                var_dir=Path(tmp),
                extra={"SUBSCRIPTION_RECHECK_INTERVAL": str(interval), "CENTRIFUGO_ENGINE": args.engine},
            ).start()
            try:
                rows.append(asyncio.run(asyncio.wait_for(hold_subscriptions(gateway, args, interval), 600)))
            finally:
                gateway.stop()

    print(f"\n{args.connections} connections x {args.subs} subscriptions, {args.window:.0f} s window, "
          "CPU as a share of one core (user+system, /proc):")  # fmt: skip
    print("| interval | sub_refresh/s | callbacks CPU | Centrifugo CPU | Redis CPU | clients CPU | ended |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        label = f"{r['interval']} s" if r["interval"] else "0 (off)"
        print(f"| {label} | {r['sub_refresh_per_s']:,.0f} | {r['callbacks_cpu']:.1%} | {r['centrifugo_cpu']:.1%} "
              f"| {r['redis_cpu']:.1%} | {r['clients_cpu']:.1%} | {r['ended']:.0f} |")  # fmt: skip
    on = [r for r in rows if r["interval"]]
    off = [r for r in rows if not r["interval"]]
    if on and off:
        for r in on:
            per_call = (r["callbacks_cpu"] - off[0]["callbacks_cpu"]) / max(r["sub_refresh_per_s"], 1) * 1e6
            print(f"interval {r['interval']} s vs off: callbacks +{r['callbacks_cpu'] - off[0]['callbacks_cpu']:.1%} "
                  f"of a core ({per_call:.0f} us per sub_refresh), Centrifugo "
                  f"+{r['centrifugo_cpu'] - off[0]['centrifugo_cpu']:.1%}, Redis +{r['redis_cpu'] - off[0]['redis_cpu']:.1%}")  # fmt: skip
    bad = [r for r in rows if r["ended"] or r["sub_refresh_not_result"]]
    if bad:
        print("FAIL: subscriptions ended or sub_refresh answered other than a result:", bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
