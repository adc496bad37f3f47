"""The stream writer on the event loop with REDIS_ACK=replicated, against a real master and replica:
an idempotent retry that finds its first write is acknowledged only once a replica has that write."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from partitions.rules import StreamTarget
from realtime.redis_async import close_async_redis
from streams.idempotency import PublicationKey
from streams.writer import StreamUnavailable, stream_append_async, stream_key
from tests.support.procs import Process, start_redis, wait_for


@pytest.fixture
def replicated(tmp_path: Path, settings: Any) -> Iterator[tuple[int, Process]]:
    master, port = start_redis(tmp_path / "master", extra=("--repl-diskless-sync-delay", "0"))
    replica, replica_port = start_redis(tmp_path / "replica", extra=("--replicaof", "127.0.0.1", str(port)))
    link = redis.Redis(port=replica_port)
    wait_for(lambda: link.info("replication").get("master_link_status") == "up", timeout=20, what="replica in sync")
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_ACK = "replicated"
    settings.REDIS_ACK_REPLICAS = 1
    try:
        yield port, replica
    finally:
        os.kill(replica.popen.pid, signal.SIGCONT)
        replica.stop()
        master.stop()


def append_once(**kwargs: Any) -> Any:
    """One append on a fresh event loop: a new connection that has written nothing yet."""

    async def once() -> Any:
        try:
            return await stream_append_async(**kwargs)
        finally:
            await close_async_redis()

    return asyncio.run(once())


def test_issue11_item3_an_idempotent_retry_is_not_acknowledged_before_a_replica_has_the_entry(
    replicated: tuple[int, Process],
) -> None:
    """The first write lands on the master while the replica is stalled: 1503. The publisher's
    retry with the same key (on another connection) finds the entry and writes nothing; the WAIT
    after it must still cover that entry: 1503 again while the replica is stalled, the entry's id
    once it answers. (Redis 7 waits for the replication offset as of the connection's last
    command, read or write; a connection that has sent nothing would get WAIT's count at once.)"""
    port, replica = replicated
    target = StreamTarget("chat", 1, None, True, None)
    key = PublicationKey.of(user="u", client="c", channel="chat:1", key="k", data=b"{}", binary=False)
    publication = {"target": target, "channel": "chat:1", "user": "u", "client": "c", "data": b"{}", "idempotency": key}
    os.kill(replica.popen.pid, signal.SIGSTOP)
    try:
        with pytest.raises(StreamUnavailable, match="NotReplicated"):
            append_once(**publication)
        with pytest.raises(StreamUnavailable, match="NotReplicated"):
            append_once(**publication)  # the retry: a duplicate, but not on any replica yet
    finally:
        os.kill(replica.popen.pid, signal.SIGCONT)
    retried = append_once(**publication)
    assert retried.duplicate
    assert redis.Redis(port=port).xlen(stream_key("chat", 1)) == 1
