"""`python -m bench.joinleave`: what join/leave logging (issue 12, item 4) costs per member.

On a redis-server of its own (loopback, no persistence), one partition holding M members
(M = 100, 10,000, 100,000), measures Redis' CPU per command from `INFO commandstats`
(usec_per_call; the server's own time, not the round trip):
- heartbeat: the script each sub_refresh runs for a known member (moves its deadline);
- join: the same script for a new member (plus its XADD);
- reap pass, nothing due: what each reaper pays per partition per pass, whatever M is;
- reap, per leave: a pass that finds every member gone, divided by M.
And, in-process, the callback's CPU per heartbeat: building the command (streams.joinleave.Member),
and the whole `member_seen_async` on an event loop (the auto-pipelined client, as in a worker).
Bounded: a fixed number of commands, pipelined; the server is stopped at the end.

    DJANGO_SETTINGS_MODULE=realtime.settings.test .venv/bin/python -m bench.joinleave
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import django


def _evalsha_us(client: object) -> float:
    stats = client.info("commandstats")  # type: ignore[attr-defined]
    return float(stats["cmdstat_evalsha"]["usec_per_call"])


def _async_cpu_us(members: list[Any]) -> float:
    """This process's CPU per `member_seen_async` (build, send on the auto-pipelined connection,
    parse the answer), 500 at a time, 40 rounds."""
    from realtime.redis_async import close_async_redis
    from streams.joinleave import member_seen_async

    async def run() -> float:
        await asyncio.gather(*(member_seen_async(m, joining=False) for m in members))  # connect, warm up
        started = time.process_time()
        for _ in range(40):
            await asyncio.gather(*(member_seen_async(m, joining=False) for m in members))
        spent = time.process_time() - started
        await close_async_redis()
        return spent / (40 * len(members)) * 1e6

    return asyncio.run(run())


def main() -> None:
    django.setup()
    import redis
    from django.conf import settings

    from bench.micro import best_us
    from partitions.rules import StreamTarget
    from streams import joinleave
    from tests.support.procs import start_redis

    target = StreamTarget("bench", 0, None, True, None)
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_redis(Path(tmp))
        try:
            client = redis.Redis(port=port)
            settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
            for script in joinleave._SCRIPTS.values():
                client.script_load(script)
            members_key = joinleave.members_key("bench", 0)
            print(f"{'members':>8} {'join us':>8} {'heartbeat us':>13} {'empty pass us':>14} {'per leave us':>13}")
            for count in (100, 10_000, 100_000):
                client.flushall()
                for script in joinleave._SCRIPTS.values():
                    client.script_load(script)
                members = [joinleave.Member(target=target, channel=f"room:{i % 1000}", user=str(i), client=f"c{i}")
                           for i in range(count)]  # fmt: skip
                client.config_resetstat()
                pipe = client.pipeline(transaction=False)
                for i, member in enumerate(members):
                    pipe.execute_command(*member.command(joining=True))
                    if i % 1000 == 999:
                        pipe.execute()
                pipe.execute()
                join_us = _evalsha_us(client)
                client.config_resetstat()
                for _ in range(10):
                    pipe = client.pipeline(transaction=False)
                    for member in members[:2000]:
                        pipe.execute_command(*member.command(joining=False))
                    pipe.execute()
                heartbeat_us = _evalsha_us(client)
                client.config_resetstat()
                pipe = client.pipeline(transaction=False)
                for _ in range(2000):
                    pipe.execute_command(*joinleave._reap_command("bench", 0))
                pipe.execute()
                empty_us = _evalsha_us(client)
                client.zadd(members_key, {m: 1 for m in client.zrange(members_key, 0, -1)}, xx=True)
                client.config_resetstat()
                gone = joinleave.reap("bench", 0)
                assert gone == count, gone
                stats = client.info("commandstats")["cmdstat_evalsha"]
                per_leave = float(stats["usec"]) / count
                print(f"{count:>8} {join_us:>8.1f} {heartbeat_us:>13.1f} {empty_us:>14.1f} {per_leave:>13.1f}")
            member = members[0]
            build_us = best_us(lambda: member.command(joining=False))
            print(f"callback CPU to build one heartbeat command: {build_us:.2f} us")
            print(
                f"callback CPU per heartbeat sent and answered on the event loop: {_async_cpu_us(members[:500]):.1f} us"
            )
        finally:
            proc.stop()


if __name__ == "__main__":
    main()
