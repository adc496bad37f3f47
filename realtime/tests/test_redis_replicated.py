"""REDIS_ACK=replicated on the event loop's client, against a real master and replica: one WAIT
per flush covers the writes before it; a write is acknowledged only when WAIT counts enough
replicas, else NotReplicated (the entry is on the master); `local` sends no WAIT at all."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from realtime.redis_async import NotReplicated, PipelinedRedis, RedisReplyError
from tests.support.procs import Process, start_redis, wait_for


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[int, Process]]:
    """A master (its port) and one replica (its process), in sync."""
    master, port = start_redis(tmp_path / "master", extra=("--repl-diskless-sync-delay", "0"))
    redis.Redis(port=port).config_set("requirepass", "s3cret")  # after start_redis's readiness PING
    replica, replica_port = start_redis(
        tmp_path / "replica", extra=("--replicaof", "127.0.0.1", str(port), "--masterauth", "s3cret")
    )
    link = redis.Redis(port=replica_port)
    wait_for(lambda: link.info("replication").get("master_link_status") == "up", timeout=20, what="replica in sync")
    try:
        yield port, replica
    finally:
        os.kill(replica.popen.pid, signal.SIGCONT)
        replica.stop()
        master.stop()


def client(port: int, replicas: int) -> PipelinedRedis:
    return PipelinedRedis(f"redis://:s3cret@127.0.0.1:{port}/0", timeout=0.5, ack_replicas=replicas)


def commands(port: int) -> dict[str, Any]:
    return dict(redis.Redis(port=port, password="s3cret").info("commandstats"))


def test_issue11_item3_one_wait_per_flush_confirms_every_write_before_it(pair: tuple[int, Process]) -> None:
    port, _ = pair

    async def body() -> list[Any]:
        c = client(port, 1)
        try:
            return await asyncio.gather(*(c.execute("XADD", "s", "*", "n", i) for i in range(50)))
        finally:
            await c.close()

    ids = asyncio.run(body())
    assert len(set(ids)) == 50
    assert commands(port)["cmdstat_wait"]["calls"] == 1  # 50 writes issued together: one WAIT after them


def test_issue11_item3_local_mode_sends_no_wait(pair: tuple[int, Process]) -> None:
    port, _ = pair

    async def body() -> None:
        c = client(port, 0)
        try:
            await asyncio.gather(*(c.execute("XADD", "s", "*", "n", i) for i in range(50)))
        finally:
            await c.close()

    asyncio.run(body())
    assert "cmdstat_wait" not in commands(port)


def test_issue11_item3_fewer_replicas_than_required_is_not_replicated(pair: tuple[int, Process]) -> None:
    """REDIS_ACK_REPLICAS=2 with one replica: every write fails with NotReplicated (the entry is on
    the master: the error says so), never a false ok; the message has no password."""
    port, _ = pair

    async def body() -> list[Any]:
        c = client(port, 2)
        try:
            return await asyncio.gather(
                *(c.execute("XADD", "s", "*", "n", i) for i in range(3)), return_exceptions=True
            )
        finally:
            await c.close()

    results = asyncio.run(body())
    assert all(isinstance(r, NotReplicated) for r in results), results
    assert "WAIT confirmed 1 of 2 replicas" in str(results[0])
    assert "s3cret" not in str(results[0])
    assert redis.Redis(port=port, password="s3cret").xlen("s") == 3  # written, just not confirmed


def test_issue11_item3_a_stalled_replica_fails_writes_until_it_answers_again(pair: tuple[int, Process]) -> None:
    port, replica = pair

    async def body() -> tuple[Any, Any, Any]:
        c = client(port, 1)
        try:
            before = await c.execute("XADD", "s", "*", "n", "before")
            os.kill(replica.popen.pid, signal.SIGSTOP)  # the replica stops acknowledging
            try:
                during = await asyncio.gather(c.execute("XADD", "s", "*", "n", "during"), return_exceptions=True)
            finally:
                os.kill(replica.popen.pid, signal.SIGCONT)
            after = await c.execute("XADD", "s", "*", "n", "after")
            return before, during[0], after
        finally:
            await c.close()

    before, during, after = asyncio.run(body())
    assert isinstance(before, bytes)
    assert isinstance(during, NotReplicated)
    assert isinstance(after, bytes)


def test_issue11_item3_an_error_reply_stays_the_answer_when_wait_fails(pair: tuple[int, Process]) -> None:
    """A write Redis refused wrote nothing: its caller gets Redis's error, not NotReplicated."""
    port, _ = pair

    async def body() -> list[Any]:
        c = client(port, 2)
        try:
            await c.execute("SET", "str", "v")
            return await asyncio.gather(
                c.submit("XADD", "str", "*", "n", 1), c.submit("XADD", "s", "*", "n", 1), return_exceptions=True
            )
        finally:
            await c.close()

    wrong, unconfirmed = asyncio.run(body())
    assert isinstance(wrong, RedisReplyError)
    assert str(wrong).startswith("WRONGTYPE")
    assert isinstance(unconfirmed, NotReplicated)


def test_issue11_item3_wait_answers_inside_the_socket_timeout(pair: tuple[int, Process]) -> None:
    """With the default REDIS_SOCKET_TIMEOUT (0.25 s) and a stalled replica, WAIT itself must
    answer before the client's deadline (Redis times it out on a 10 Hz clock): each write gets
    NotReplicated, and the connection stays up for the commands behind it."""
    port, replica = pair

    async def body() -> tuple[list[Any], bool]:
        c = PipelinedRedis(f"redis://:s3cret@127.0.0.1:{port}/0", timeout=0.25, ack_replicas=1)
        try:
            await c.execute("PING")
            connection = c._connection
            os.kill(replica.popen.pid, signal.SIGSTOP)
            try:
                results = [
                    (await asyncio.gather(c.execute("XADD", "s", "*", "n", i), return_exceptions=True))[0]
                    for i in range(6)
                ]
            finally:
                os.kill(replica.popen.pid, signal.SIGCONT)
            return results, c._connection is connection and not connection.closed
        finally:
            await c.close()

    results, same_connection = asyncio.run(body())
    assert [type(r).__name__ for r in results] == ["NotReplicated"] * 6, [str(r) for r in results]
    assert same_connection
