"""`python -m bench.joinleave`: what join/leave logging (issue 12, item 4) costs per member.

On a redis-server of its own (loopback, no persistence), one partition holding M members
(M = 100, 10,000, 100,000), measures Redis' CPU per command from `INFO commandstats`
(usec_per_call; the server's own time, not the round trip):
- heartbeat: the script each sub_refresh runs for a known member (moves its deadline);
- join: the same script for a new member (plus its XADD);
- reap pass, nothing due: what each reaper pays per partition per pass, whatever M is;
- reap, per leave: a pass that finds every member gone, divided by M.
And, in-process, the callback's CPU to build one heartbeat command (streams.joinleave.Member).
Bounded: a fixed number of commands, pipelined; the server is stopped at the end.

    DJANGO_SETTINGS_MODULE=realtime.settings.test .venv/bin/python -m bench.joinleave
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import django


def _evalsha_us(client: object) -> float:
    stats = client.info("commandstats")  # type: ignore[attr-defined]
    return float(stats["cmdstat_evalsha"]["usec_per_call"])


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
            print(
                f"callback CPU to build one heartbeat command: {best_us(lambda: member.command(joining=False)):.2f} us"
            )
        finally:
            proc.stop()


if __name__ == "__main__":
    main()
