"""The auto-pipelining client against a real redis-server: replies in order, one write for a
batch, errors per command, and a Redis that is down, stalled, restarted or refusing a password
becomes RedisUnavailable — never a hang, never a reply matched to the wrong command."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from realtime.redis_async import PipelinedRedis, RedisReplyError, RedisUnavailable, _Endpoint
from tests.support.procs import Process, free_port, start_redis


def run(body: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(body())


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[Process, int]]:
    """A redis-server this test may stop, pause or restart."""
    proc, port = start_redis(tmp_path)
    yield proc, port
    proc.stop()


def test_replies_come_back_to_their_own_commands(redis_url: str) -> None:
    async def body() -> list[Any]:
        client = PipelinedRedis(redis_url, timeout=1)
        try:
            # 200 commands issued in one go: one write, replies matched by order.
            return await asyncio.gather(*(client.execute("INCRBY", f"k{i % 7}", i) for i in range(200)))
        finally:
            await client.close()

    replies = run(body)
    totals: dict[int, int] = {}
    for i, reply in enumerate(replies):
        totals[i % 7] = totals.get(i % 7, 0) + i
        assert reply == totals[i % 7]


def test_commands_issued_together_share_one_write(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from realtime import redis_async

    writes: list[int] = []
    original = redis_async._Connection.flush

    def counting_flush(self: Any) -> None:
        writes.append(len(self.outbox))
        original(self)

    monkeypatch.setattr(redis_async._Connection, "flush", counting_flush)

    async def body() -> None:
        client = PipelinedRedis(redis_url, timeout=1)
        await client.execute("PING")
        writes.clear()
        await asyncio.gather(*(client.execute("PING") for _ in range(50)))
        await client.close()

    run(body)
    assert [n for n in writes if n] == [50]


def test_an_error_reply_fails_only_its_command(redis_url: str) -> None:
    async def body() -> tuple[Any, ...]:
        client = PipelinedRedis(redis_url, timeout=1)
        try:
            return tuple(
                await asyncio.gather(
                    client.execute("SET", "s", "v"),
                    client.execute("XADD", "s", "*", "f", "v"),  # WRONGTYPE
                    client.execute("GET", "s"),
                    return_exceptions=True,
                )
            )
        finally:
            await client.close()

    ok, wrong, value = run(body)
    assert (ok, value) == (b"OK", b"v")
    assert isinstance(wrong, RedisReplyError)
    assert str(wrong).startswith("WRONGTYPE")


def test_execute_many_sends_together_and_raises_the_first_error(redis_url: str) -> None:
    async def body() -> Any:
        client = PipelinedRedis(redis_url, timeout=1)
        try:
            assert await client.execute_many(("INCR", "n"), ("EXPIRE", "n", 10, "NX")) == [1, 1]
            with pytest.raises(RedisReplyError):
                await client.execute_many(("INCR", "n"), ("NOSUCHCOMMAND",))
            return await client.execute("GET", "n")
        finally:
            await client.close()

    assert run(body) == b"2"  # the INCR before the error still ran: nothing is rolled back or retried


def test_redis_down_is_unavailable_at_once() -> None:
    port = free_port()  # nothing listens here

    async def body() -> float:
        client = PipelinedRedis(f"redis://127.0.0.1:{port}", timeout=2)
        started = time.monotonic()
        with pytest.raises(RedisUnavailable, match="cannot connect to Redis"):
            await client.execute("PING")
        return time.monotonic() - started

    assert run(body) < 1.0  # a refused connection fails at once, not after the 2 s timeout


def test_a_stalled_redis_times_out_every_waiting_command(own_redis: tuple[Process, int]) -> None:
    _, port = own_redis
    admin = redis.Redis(port=port)

    async def body() -> tuple[list[Any], float]:
        client = PipelinedRedis(f"redis://127.0.0.1:{port}", timeout=0.3)
        await client.execute("PING")
        admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # Redis stops answering clients
        started = time.monotonic()
        results = await asyncio.gather(*(client.execute("PING") for _ in range(5)), return_exceptions=True)
        elapsed = time.monotonic() - started
        await client.close()
        return results, elapsed

    results, elapsed = run(body)
    assert all(isinstance(r, RedisUnavailable) and "did not answer within 0.3 s" in str(r) for r in results)
    assert 0.25 < elapsed < 1.0
    admin.execute_command("CLIENT", "UNPAUSE")


def test_after_redis_restarts_the_next_command_reconnects(tmp_path: Path) -> None:
    proc, port = start_redis(tmp_path / "a")

    async def body() -> Any:
        client = PipelinedRedis(f"redis://127.0.0.1:{port}", timeout=0.5)
        assert await client.execute("SET", "x", "1") == b"OK"
        proc.stop()
        await asyncio.sleep(0.05)  # let the loop see the connection close
        with pytest.raises(RedisUnavailable):
            await client.execute("GET", "x")
        again, _ = start_redis(tmp_path / "b", port=port)
        from realtime.redis_async import RECONNECT_AFTER

        await asyncio.sleep(RECONNECT_AFTER)  # a failed connect holds the next one back this long
        try:
            return await client.execute("PING")
        finally:
            await client.close()
            again.stop()

    assert run(body) == b"PONG"


def test_concurrent_callers_share_one_connection_attempt(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[int] = []
    original = PipelinedRedis._open

    async def counting_open(self: PipelinedRedis) -> Any:
        opened.append(1)
        return await original(self)

    monkeypatch.setattr(PipelinedRedis, "_open", counting_open)

    async def body() -> None:
        client = PipelinedRedis(redis_url, timeout=1)
        await asyncio.gather(*(client.execute("PING") for _ in range(20)))
        await client.close()

    run(body)
    assert opened == [1]


def test_password_and_database_from_the_url(own_redis: tuple[Process, int]) -> None:
    _, port = own_redis
    admin = redis.Redis(port=port)
    admin.config_set("requirepass", "s3cret")
    admin = redis.Redis(port=port, password="s3cret")

    async def body() -> None:
        good = PipelinedRedis(f"redis://:s3cret@127.0.0.1:{port}/3", timeout=1)
        assert await good.execute("SET", "where", "db3") == b"OK"
        await good.close()
        bad = PipelinedRedis(f"redis://:wrong@127.0.0.1:{port}/0", timeout=1)
        with pytest.raises(RedisUnavailable, match="refused AUTH"):
            await bad.execute("PING")

    run(body)
    assert redis.Redis(port=port, password="s3cret", db=3).get("where") == b"db3"
    admin.config_set("requirepass", "")


def test_a_unix_socket_url(tmp_path: Path) -> None:
    path = tmp_path / "redis.sock"
    proc, _ = start_redis(tmp_path, extra=("--unixsocket", str(path)))

    async def body() -> Any:
        client = PipelinedRedis(f"unix://{path}", timeout=1)
        try:
            return await client.execute("PING")
        finally:
            await client.close()

    try:
        assert run(body) == b"PONG"
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost:6379", ("localhost", 6379, 0, "", "", False)),
        ("redis://u:p%40ss@h:7000/5", ("h", 7000, 5, "u", "p@ss", False)),
        ("rediss://h", ("h", 6379, 0, "", "", True)),
        ("redis://h?db=2", ("h", 6379, 2, "", "", False)),
    ],
)
def test_urls_are_read_as_redis_py_reads_them(url: str, expected: tuple[object, ...]) -> None:
    e = _Endpoint(url)
    assert (e.host, e.port, e.db, e.username, e.password, e.tls) == expected


@pytest.mark.parametrize("url", ["http://h", "redis://h/x"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="REDIS_URL"):
        _Endpoint(url)


def test_a_reply_nobody_asked_for_drops_the_connection() -> None:
    """A server speaking out of turn (not Redis, or a desynchronised stream) is not trusted."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def body() -> None:
        async def rogue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)
            writer.write(b"+PONG\r\n+EXTRA\r\n")
            await writer.drain()
            await asyncio.sleep(1)

        server = await asyncio.start_server(rogue, sock=listener)
        client = PipelinedRedis(f"redis://127.0.0.1:{port}", timeout=1)
        assert await client.execute("PING") == b"PONG"
        await asyncio.sleep(0.05)
        assert client._connection is not None
        assert client._connection.closed
        server.close()

    run(body)


def test_submit_returns_error_replies_and_connects_when_needed(redis_url: str) -> None:
    async def body() -> tuple[Any, Any]:
        client = PipelinedRedis(redis_url, timeout=1)
        try:
            first = await client.submit("SET", "a", "1")  # not connected yet: connects, then sends
            wrong = await client.submit("XADD", "a", "*", "f", "v")
            return first, wrong
        finally:
            await client.close()

    first, wrong = run(body)
    assert first == b"OK"
    assert isinstance(wrong, RedisReplyError)


def test_issue11_item2_during_an_outage_connects_are_spaced_not_one_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a failed connect (or, behind Sentinel, a failed discovery), commands fail at once
    with the same error for RECONNECT_AFTER; then one new attempt. 200 commands over ~0.3 s of
    outage: a handful of attempts, not 200."""
    attempts: list[float] = []
    original = PipelinedRedis._open

    async def counting_open(self: PipelinedRedis) -> Any:
        attempts.append(time.monotonic())
        return await original(self)

    monkeypatch.setattr(PipelinedRedis, "_open", counting_open)
    port = free_port()  # nothing listens here

    async def body() -> list[str]:
        client = PipelinedRedis(f"redis://127.0.0.1:{port}", timeout=1)
        errors = []
        started = time.monotonic()
        while time.monotonic() < started + 0.3:
            with pytest.raises(RedisUnavailable) as caught:
                await client.execute("PING")
            errors.append(str(caught.value))
            await asyncio.sleep(0.0015)
        return errors

    errors = run(body)
    assert len(errors) > 50
    assert all(f"cannot connect to Redis at 127.0.0.1:{port}" in error for error in errors)
    assert 2 <= len(attempts) <= 5, f"{len(attempts)} connect attempts"  # RECONNECT_AFTER = 0.1 s
