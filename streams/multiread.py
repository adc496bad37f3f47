"""XREAD and XREADGROUP over many partition keys, on one Redis or a Redis Cluster.

One server takes every key in one blocking command. A Cluster refuses keys of different slots in
one command (CROSSSLOT), and every partition has a slot of its own (its hash tag), usually on
different masters; a blocking read per key would need a connection per key. So on a Cluster each
round is one pipeline of non-blocking reads, one per key (redis-py sends it to every master at once,
one round trip), and when all are empty the caller sleeps POLL_SECONDS and reads again until
`block_ms` is used up. Cost when idle: 1 / POLL_SECONDS rounds a second, each one cheap command per
partition; delay added to a new entry: at most POLL_SECONDS.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from redis.cluster import RedisCluster
from redis.crc import key_slot

from realtime.redis import Client

POLL_SECONDS = 0.05


def read_streams(
    client: Client,
    positions: Mapping[str, str],
    *,
    count: int,
    block_ms: int | None = None,
    group: tuple[str, str] | None = None,
) -> list[Any]:
    """XREAD (or, with `group` = (group, consumer), XREADGROUP) of `positions` (key -> id to read
    after, or ">" for a group's new entries): a list of [key, entries] for the keys that had any,
    waiting up to `block_ms` when none had (None: no wait)."""
    if not positions:
        return []
    streams: dict[Any, Any] = dict(positions)
    if not isinstance(client, RedisCluster) or len({key_slot(key.encode()) for key in positions}) == 1:
        if group:
            reply: Any = client.xreadgroup(group[0], group[1], streams, count=count, block=block_ms)
        else:
            reply = client.xread(streams, count=count, block=block_ms)
        return list(reply or ())
    deadline = time.monotonic() + (block_ms or 0) / 1000
    while True:
        pipe = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
        for key, position in positions.items():
            if group:
                pipe.xreadgroup(group[0], group[1], {key: position}, count=count)
            else:
                pipe.xread({key: position}, count=count)
        found = [item for reply in pipe.execute() for item in reply or ()]
        left = deadline - time.monotonic()
        if found or left <= 0:
            return found
        time.sleep(min(POLL_SECONDS, left))
