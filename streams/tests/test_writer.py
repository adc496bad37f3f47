from __future__ import annotations

import pytest
import redis

from partitions.rules import StreamTarget
from streams.writer import StreamUnavailable, stream_append, stream_key


def test_the_key_puts_each_partition_in_its_own_cluster_slot(settings: object) -> None:
    assert stream_key("chat", 3) == "rtgw:stream:{chat:3}"


def test_append_writes_every_field(redis_client: redis.Redis) -> None:
    target = StreamTarget("chat", 2, None, True, None)
    appended = stream_append(target=target, channel="chat:1", user="42", client="c1", data=b'{"a": 1}')
    [(entry_id, fields)] = redis_client.xrange(appended.key)
    assert (appended.key, appended.entry_id) == ("rtgw:stream:{chat:2}", entry_id)
    assert {k: v for k, v in fields.items() if k != "ts"} == {
        "channel": "chat:1",
        "user": "42",
        "client": "c1",
        "data": '{"a": 1}',
    }


def test_append_trims_approximately_to_the_cap(redis_client: redis.Redis) -> None:
    target = StreamTarget("capped", 0, 10, True, None)
    for i in range(1000):
        stream_append(target=target, channel="c", user="u", client="x", data=str(i).encode())
    length = redis_client.xlen("rtgw:stream:{capped:0}")
    # MAXLEN ~ trims whole macro nodes (100 entries by default): bounded, never below the cap.
    assert 10 <= length <= 200


def test_a_failed_write_raises_stream_unavailable(settings: object) -> None:
    from realtime.redis import reset_redis
    from tests.support.procs import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # type: ignore[attr-defined]
    reset_redis()
    try:
        with pytest.raises(StreamUnavailable, match="ConnectionError"):
            stream_append(target=StreamTarget("s", 0, None, True, None), channel="c", user="u", client="x", data=b"1")
    finally:
        reset_redis()
