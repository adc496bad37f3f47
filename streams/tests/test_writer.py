"""The stream writer, through both transports: redis-py (server API, commands) and the callback
workers' auto-pipelined client (realtime.redis_async) — the same command, the same result."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis

from partitions.rules import StreamTarget
from streams.idempotency import PublicationKey
from streams.writer import (
    Appended,
    IdempotencyKeyReused,
    StreamUnavailable,
    rate_limit_hit,
    rate_limit_hit_async,
    stream_append,
    stream_append_async,
    stream_key,
)

Append = Callable[..., Appended]


def _on_a_loop(coroutine_function: Callable[..., Any]) -> Callable[..., Any]:
    def call(**kwargs: Any) -> Any:
        from realtime.redis_async import close_async_redis

        async def once() -> Any:
            try:
                return await coroutine_function(**kwargs)
            finally:
                await close_async_redis()

        return asyncio.run(once())

    return call


@pytest.fixture(params=["redis-py", "pipelined"])
def append(request: pytest.FixtureRequest) -> Append:
    return stream_append if request.param == "redis-py" else _on_a_loop(stream_append_async)


@pytest.fixture(params=["redis-py", "pipelined"])
def rate_hit(request: pytest.FixtureRequest) -> Callable[..., bool]:
    return rate_limit_hit if request.param == "redis-py" else _on_a_loop(rate_limit_hit_async)


def test_the_key_puts_each_partition_in_its_own_cluster_slot(settings: object) -> None:
    assert stream_key("chat", 3) == "rtgw:stream:{chat:3}"
    settings.REDIS_KEY_PREFIX = "other"  # type: ignore[attr-defined]
    assert stream_key("chat", 3) == "other:stream:{chat:3}"


def test_append_writes_every_field(append: Append, redis_client: redis.Redis) -> None:
    target = StreamTarget("chat", 2, None, True, None)
    appended = append(target=target, channel="chat:1", user="42", client="c1", data=b'{"a": 1}')
    [(entry_id, fields)] = redis_client.xrange(appended.key)
    assert (appended.key, appended.entry_id, appended.duplicate) == ("rtgw:stream:{chat:2}", entry_id, False)
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


def key(raw: str, *, data: bytes, user: str = "u", channel: str = "c", binary: bool = False) -> PublicationKey:
    return PublicationKey.of(user=user, client="x", channel=channel, key=raw, data=data, binary=binary)


def test_an_idempotency_key_stores_once_even_after_the_script_cache_is_flushed(
    append: Append, redis_client: redis.Redis
) -> None:
    target = StreamTarget("chat", 0, 1000, True, None)
    first = append(target=target, channel="c", user="u", client="x", data=b"1", idempotency=key("k-1", data=b"1"))
    redis_client.script_flush()  # a restarted Redis: the next EVALSHA answers NOSCRIPT
    again = append(target=target, channel="c", user="u", client="x", data=b"1", idempotency=key("k-1", data=b"1"))
    other = append(target=target, channel="c", user="u", client="x", data=b"2", idempotency=key("k-2", data=b"2"))
    assert (again.entry_id, again.duplicate) == (first.entry_id, True)
    assert other.entry_id != first.entry_id
    assert not other.duplicate
    assert redis_client.xlen(first.key) == 2
    assert redis_client.xrange(first.key)[0][1]["idem"] == "k-1"


def test_issue9_item1_the_same_raw_key_from_another_user_or_channel_of_the_partition_is_stored(
    append: Append, redis_client: redis.Redis
) -> None:
    target = StreamTarget("chat", 0, 1000, True, None)  # one partition: every write below shares it
    writes = [("alice", "chat:a"), ("bob", "chat:a"), ("alice", "chat:b"), ("bob", "chat:b")]
    ids = [
        append(target=target, channel=channel, user=user, client="x", data=b"{}",
               idempotency=key("K", data=b"{}", user=user, channel=channel)).entry_id
        for user, channel in writes
    ]  # fmt: skip
    assert len(set(ids)) == 4
    stored = [(f["user"], f["channel"], f["idem"]) for _, f in redis_client.xrange("rtgw:stream:{chat:0}")]
    assert stored == [(u, c, "K") for u, c in writes]
    # The Redis key names no publisher's raw key: a digest of (user, channel, key), in the partition's slot.
    assert sorted(redis_client.keys("rtgw:idem:*")) == sorted(
        f"rtgw:idem:{{chat:0}}:{key('K', data=b'{}', user=u, channel=c).scope}" for u, c in writes
    )


def test_issue9_item1_a_key_reused_with_other_data_is_refused_and_stores_nothing(
    append: Append, redis_client: redis.Redis
) -> None:
    target = StreamTarget("chat", 0, 1000, True, None)
    first = append(target=target, channel="c", user="u", client="x", data=b"1", idempotency=key("K", data=b"1"))
    with pytest.raises(IdempotencyKeyReused):
        append(target=target, channel="c", user="u", client="x", data=b"2", idempotency=key("K", data=b"2"))
    with pytest.raises(IdempotencyKeyReused):  # the same bytes, but binary this time: other data
        append(target=target, channel="c", user="u", client="x", data=b"1", binary=True,
               idempotency=key("K", data=b"1", binary=True))  # fmt: skip
    again = append(target=target, channel="c", user="u", client="x", data=b"1", idempotency=key("K", data=b"1"))
    assert (again.entry_id, again.duplicate) == (first.entry_id, True)
    assert redis_client.xlen(first.key) == 1


def test_binary_data_is_stored_as_bytes_and_marked(append: Append, redis_url: str) -> None:
    target = StreamTarget("bin", 0, None, True, None)
    appended = append(target=target, channel="c", user="u", client="x", data=b"\x00\xff", binary=True)
    fields = redis.Redis.from_url(redis_url).xrange(appended.key)[0][1]
    assert (fields[b"data"], fields[b"enc"]) == (b"\x00\xff", b"binary")


def test_rate_limit_counts_per_window(rate_hit: Callable[..., bool], redis_client: redis.Redis) -> None:
    hits = [rate_hit(rule_id=7, who="42", limit=2, window=60) for _ in range(4)]
    assert hits == [False, False, True, True]
    [key] = redis_client.keys("rtgw:rate:7:42:*")
    assert 0 < redis_client.ttl(key) <= 61


@pytest.mark.parametrize("transport", ["redis-py", "pipelined"])
def test_a_failed_write_raises_stream_unavailable(transport: str, settings: object) -> None:
    from realtime.redis import reset_redis
    from tests.support.procs import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # type: ignore[attr-defined]
    reset_redis()
    write = stream_append if transport == "redis-py" else _on_a_loop(stream_append_async)
    try:
        with pytest.raises(StreamUnavailable, match=r"ConnectionError|RedisUnavailable"):
            write(target=StreamTarget("s", 0, None, True, None), channel="c", user="u", client="x", data=b"1")
        with pytest.raises(StreamUnavailable):
            (rate_limit_hit if transport == "redis-py" else _on_a_loop(rate_limit_hit_async))(
                rule_id=1, who="u", limit=1, window=1
            )
    finally:
        reset_redis()


def test_issue10_item2_the_blocking_writer_sends_through_redis_py_public_command_call(
    monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    """Only redis-py's public API (execute_command), not its connection pool's internals: a client
    wrapped or configured by its public interface sees every write, including a NOSCRIPT reload."""
    from realtime.redis import get_redis

    client = get_redis()
    sent: list[object] = []
    public = client.execute_command

    def observed(*args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return public(*args, **options)

    monkeypatch.setattr(client, "execute_command", observed)
    plain = stream_append(target=StreamTarget("pub", 0, None, True, None), channel="c", user="u", client="x", data=b"1")
    redis_client.script_flush()
    keyed = stream_append(
        target=StreamTarget("pub", 0, None, True, None),
        channel="c",
        user="u",
        client="x",
        data=b"2",
        idempotency=key("k", data=b"2"),
    )
    assert sent == ["XADD", "EVALSHA", "SCRIPT", "EVALSHA"]
    assert [entry_id for entry_id, _ in redis_client.xrange(plain.key)] == [plain.entry_id, keyed.entry_id]
