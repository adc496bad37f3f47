"""Join/leave bookkeeping (streams.joinleave) on every Redis topology: the member script and the reap
script each touch two keys of one partition's hash tag, so a Redis Cluster runs them on the master
that owns that partition (no CROSSSLOT), through redis-py and the event-loop client alike."""

from __future__ import annotations

import asyncio
import json

import pytest

from partitions.rules import StreamTarget
from realtime.redis import get_redis, reset_redis
from streams.joinleave import Member, member_seen, member_seen_async, members_key, reap, reap_async
from streams.writer import stream_key


@pytest.mark.parametrize("topology", ["sentinel_url", "cluster_url"])
def test_issue12_item4_join_heartbeat_and_leave_work_on_sentinel_and_cluster(
    topology: str, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue(topology)
    for partition in range(8):  # a Cluster spreads these over its three masters
        target = StreamTarget("rooms", partition, 1000, True, None)
        joiner = Member(target=target, channel=f"room:{partition}", user="u1", client="c1")
        assert member_seen(joiner, joining=True)  # a join entry id
        assert asyncio.run(member_seen_async(joiner, joining=False)) == ""  # known: a heartbeat only
        other = Member(target=target, channel=f"room:{partition}", user="u2", client="c2")
        assert asyncio.run(member_seen_async(other, joining=True))
        get_redis().zadd(
            members_key("rooms", partition),
            {json.dumps([f"room:{partition}", "u1", "c1"], separators=(",", ":")): 1},
            xx=True,
        )
        assert reap("rooms", partition) == 1
        get_redis().zadd(
            members_key("rooms", partition),
            {json.dumps([f"room:{partition}", "u2", "c2"], separators=(",", ":")): 1},
            xx=True,
        )
        assert asyncio.run(reap_async("rooms", partition)) == 1
        kinds = [fields[b"type"] for _, fields in get_redis().xrange(stream_key("rooms", partition))]
        assert kinds == [b"join", b"join", b"leave", b"leave"]
    reset_redis()
