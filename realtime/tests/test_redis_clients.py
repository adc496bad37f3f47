"""realtime.redis builds one redis-py client from REDIS_URL for each kind of deployment, and that
client never re-sends a command after an ambiguous failure (XADD with an auto id is not idempotent)
while it still follows a Cluster's MOVED redirects (the node did not run the command)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from realtime.redis import get_redis

KINDS = ["redis_url", "sentinel_url", "cluster_url"]


@pytest.mark.parametrize("url_fixture", KINDS)
def test_issue11_item1_get_redis_reads_and_writes_on_each_kind(
    url_fixture: str, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue(url_fixture)
    client = get_redis()
    keys = [f"k:{{{i}}}" for i in range(20)]  # hash tags spread over the cluster's slots
    for i, key in enumerate(keys):
        client.set(key, i)
    assert [int(client.get(key)) for key in keys] == list(range(20))
    assert isinstance(client, RedisCluster) == (url_fixture == "cluster_url")


# Writes one entry, then keeps the server busy for 0.8 s before it answers: longer than the
# socket timeout (0.25 s), so the caller sees a timeout for a write that Redis did apply.
_SLOW_WRITE = """
redis.call('XADD', KEYS[1], '*', 'n', ARGV[1])
local start = redis.call('TIME')
repeat
  local now = redis.call('TIME')
until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 800000
return 1
"""


@pytest.mark.parametrize("url_fixture", KINDS)
def test_issue11_item1_a_write_that_timed_out_is_not_sent_again(
    url_fixture: str, request: pytest.FixtureRequest
) -> None:
    """An ambiguous failure: the write landed, the answer came too late. A client that retried
    would run the write again (and store the message twice)."""
    request.getfixturevalue(url_fixture)
    client = get_redis()
    key = "t:stream:{retry}"
    client.xadd(key, {"n": "0"})  # connected, slot map known
    with pytest.raises(redis.TimeoutError):
        client.eval(_SLOW_WRITE, 1, key, "1")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server is busy until the script ends
        try:
            if client.xlen(key) >= 2:
                break
        except redis.RedisError:
            pass
        time.sleep(0.1)
    time.sleep(1)  # a re-sent copy, had there been one, would have run by now
    assert client.xlen(key) == 2
    assert client.xadd(key, {"n": "2"})  # the client recovers for the next command
    assert client.xlen(key) == 3


def test_issue11_item1_cluster_client_follows_moved_after_a_reshard(cluster_url: str, cluster_topology: Any) -> None:
    client = get_redis()
    assert isinstance(client, RedisCluster)
    source, target = cluster_topology.masters()[:2]
    first_slot = source["slots"][0][0]  # redis-cli --cluster reshard moves a master's lowest slots first
    key = next(f"t:stream:{{{i}}}" for i in range(200_000) if key_slot(f"{{{i}}}".encode()) == first_slot)
    client.xadd(key, {"n": "0"})
    assert client.get_node_from_key(key).port == source["port"]
    cluster_topology.reshard(source["port"], target["port"], 1)
    client.xadd(key, {"n": "1"})  # sent to the old owner, MOVED, re-sent to the new one: not run twice
    assert client.get_node_from_key(key).port == target["port"]
    assert client.xlen(key) == 2


def _append_until_ok(deadline_s: float) -> tuple[float, int]:
    """stream_append in a loop until one is acknowledged: (seconds it took, failures seen)."""
    from partitions.rules import StreamTarget
    from streams.writer import StreamUnavailable, stream_append

    started, failures = time.monotonic(), 0
    while time.monotonic() - started < deadline_s:
        try:
            stream_append(
                target=StreamTarget("chat", 0, None, True, None), channel="c", user="u", client="x", data=b"1"
            )
        except StreamUnavailable:
            failures += 1
            time.sleep(0.1)
            continue
        return time.monotonic() - started, failures
    raise AssertionError(f"no write acknowledged within {deadline_s} s ({failures} failures)")


@pytest.mark.parametrize("kind", ["sentinel", "cluster"])
def test_issue11_item1_writes_resume_after_a_failover_without_a_restart(
    kind: str, tmp_path: Any, settings: Any
) -> None:
    """The master is killed (-9); the same process's client finds the promoted replica (Sentinel:
    asks the sentinels on the next connection; Cluster: re-reads the slot map after the error)."""
    from devcluster.redis_topology import ClusterRedis, SentinelRedis
    from realtime.redis import reset_redis
    from streams.writer import stream_key

    topology: Any = (SentinelRedis if kind == "sentinel" else ClusterRedis)(tmp_path).start()
    try:
        settings.REDIS_URL = topology.url
        reset_redis()
        _append_until_ok(5)
        if kind == "sentinel":
            topology.kill_master()
        else:
            port = get_redis().get_node_from_key(stream_key("chat", 0)).port  # type: ignore[union-attr]
            next(server for server in topology.servers if server.port == port).kill()
        took, failures = _append_until_ok(30)
        assert failures > 0  # it did notice the master was gone
        assert get_redis().xlen(stream_key("chat", 0)) >= 1
        print(f"{kind}: writes resumed {took:.1f} s after kill -9 ({failures} temporary errors)")
    finally:
        reset_redis()
        topology.stop()
