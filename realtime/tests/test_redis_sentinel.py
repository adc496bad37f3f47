"""The event loop's client behind real sentinels (devcluster.redis_topology.SentinelRedis: a master,
a replica, three sentinels): it finds the master, and after the master is killed it finds the
promoted replica by itself; with REDIS_ACK=replicated no acknowledged write is lost."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.redis_topology import SentinelRedis
from realtime.redis_async import RECONNECT_AFTER, NotReplicated, RedisUnavailable, open_client
from realtime.redis_sentinel import PipelinedSentinel
from realtime.redis_url import parse


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[SentinelRedis]:
    topology = SentinelRedis(tmp_path / "sentinel", down_after_ms=1000)
    topology.start()
    try:
        yield topology
    finally:
        topology.stop()


def client_for(topology: SentinelRedis, **kwargs: Any) -> PipelinedSentinel:
    client = open_client(parse(topology.url), timeout=0.5, **kwargs)
    assert isinstance(client, PipelinedSentinel)
    return client


def test_issue11_item2_sentinel_names_the_master(sentinel: SentinelRedis) -> None:
    async def body() -> Any:
        client = client_for(sentinel)
        try:
            return await client.execute("XADD", "s", "*", "n", 1)
        finally:
            await client.close()

    entry_id = asyncio.run(body())
    assert sentinel.master.client().xrange("s")[0][0] == entry_id


def test_issue11_item2_no_sentinel_answers_is_unavailable_without_the_password(tmp_path: Path) -> None:
    from tests.support.procs import free_port

    url = f"redis+sentinel://:s3cret@127.0.0.1:{free_port()}/0?sentinel_master_name=m&sentinel_password=p4ss"

    async def body() -> None:
        client = open_client(parse(url), timeout=0.5)
        with pytest.raises(RedisUnavailable, match="no sentinel named the master") as caught:
            await client.execute("PING")
        assert "s3cret" not in str(caught.value)
        assert "p4ss" not in str(caught.value)

    asyncio.run(body())


@pytest.mark.parametrize("ack", ["local", "replicated"])
def test_issue11_item2_writes_resume_after_the_master_is_killed(sentinel: SentinelRedis, ack: str) -> None:
    """kill -9 of the master while 20 writers write continuously: writes fail (RedisUnavailable,
    never a false ok) until the sentinels promote the replica; the same client then reaches the
    new master within 10 s of the kill. With `local` it acknowledges writes again at once. With
    `replicated` it acknowledges again only once the new master has a replica: the old master,
    restarted as a process manager would, which the sentinels turn into one (Sentinel waits 8 s
    before reconfiguring a returning master); and every write that returned an id is on the new
    master afterwards."""
    acknowledged: list[bytes] = []
    refused = 0
    killed_at = reached_at = resumed_at = 0.0

    async def body() -> None:
        nonlocal refused, killed_at, reached_at, resumed_at
        client = client_for(sentinel, ack=ack, ack_replicas=1)
        old_port = sentinel.master.port
        stop = False

        async def writer(n: int) -> None:
            nonlocal refused, reached_at, resumed_at
            while not stop:
                try:
                    acknowledged.append(await client.execute("XADD", "log", "*", "writer", n))
                    answered, ok = True, True
                except NotReplicated:  # a master answered; no replica has the write yet
                    refused += 1
                    answered, ok = True, False
                except RedisUnavailable:
                    refused += 1
                    answered, ok = False, False
                # After the kill was felt (a refusal), the first master that answers, the first ack.
                # (Under load the sentinels may fail over twice, back to the restarted old master.)
                if killed_at and refused and answered:
                    reached_at = reached_at or time.monotonic()
                    resumed_at = resumed_at or (time.monotonic() if ok else 0.0)
                if not ok:
                    await asyncio.sleep(0.05)

        writers = [asyncio.ensure_future(writer(n)) for n in range(20)]
        try:
            await asyncio.sleep(0.5)
            assert acknowledged, "nothing was written before the kill"
            old = sentinel.kill_master()
            killed_at, refused = time.monotonic(), 0

            def restart_as_replica() -> None:
                sentinel.wait_promoted(old_port)
                old.start(dict(os.environ))  # the sentinels make it a replica of the new master

            restarting = asyncio.get_running_loop().run_in_executor(None, restart_as_replica)
            while not resumed_at and time.monotonic() < killed_at + 30:
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # a little more on the new master
            await restarting
        finally:
            stop = True
            await asyncio.gather(*writers)
            await client.close()

    asyncio.run(body())
    assert reached_at, f"the new master was not reached within 30 s of the kill ({refused} refused)"
    assert reached_at - killed_at < 10
    assert resumed_at, f"writes were not acknowledged again within 30 s of the kill ({refused} refused)"
    if ack == "local":
        assert resumed_at - killed_at < 10
    assert refused > 0  # the kill was felt: those writes got an error, not a false ok
    new_master = sentinel.server_on(sentinel.master_port() or 0).client()
    stored = {entry_id for entry_id, _ in new_master.xrange("log")}
    missing = [entry_id for entry_id in acknowledged if entry_id not in stored]
    print(
        f"{ack}: new master reached {reached_at - killed_at:.1f} s after the kill, writes acknowledged again "
        f"after {resumed_at - killed_at:.1f} s; {refused} refused; {len(missing)} of {len(acknowledged)} "
        "acknowledged writes missing"
    )
    if ack == "replicated":
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged writes are not on the new master"


def test_issue11_item2_a_demoted_master_fails_writes_and_is_not_trusted_again(
    sentinel: SentinelRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server the client writes to becomes a replica behind the sentinels' back (REPLICAOF by
    hand, no client kill): the next write's -READONLY is a RedisUnavailable and drops the
    connection; the sentinels still name that server, and ROLE says it is not a master, so it is
    refused rather than written to; 20 concurrent callers share one discovery."""
    asked: list[int] = []
    original = PipelinedSentinel._ask_sentinels

    async def counting(self: PipelinedSentinel) -> tuple[str, int]:
        asked.append(1)
        return await original(self)

    monkeypatch.setattr(PipelinedSentinel, "_ask_sentinels", counting)
    master = sentinel.master.client()

    async def body() -> tuple[Any, Any, Any]:
        client = client_for(sentinel)
        try:
            await asyncio.gather(*(client.execute("XADD", "s", "*", "n", i) for i in range(20)))
            master.execute_command("REPLICAOF", "127.0.0.1", sentinel.replica.port)
            try:
                readonly = await asyncio.gather(client.execute("XADD", "s", "*", "n", "x"), return_exceptions=True)
                refused = await asyncio.gather(client.execute("XADD", "s", "*", "n", "y"), return_exceptions=True)
            finally:
                master.execute_command("REPLICAOF", "NO", "ONE")
            await asyncio.sleep(RECONNECT_AFTER)  # a failed discovery holds the next one back this long
            again = await asyncio.gather(*(client.execute("XADD", "s", "*", "n", i) for i in range(20)))
            return readonly[0], refused[0], again
        finally:
            await client.close()

    readonly, refused, again = asyncio.run(body())
    assert isinstance(readonly, RedisUnavailable)
    assert "cannot take writes: READONLY" in str(readonly)
    assert isinstance(refused, RedisUnavailable)
    assert "answers ROLE b'slave'" in str(refused)
    assert len(again) == 20
    assert asked == [1, 1, 1]  # first connect, the refused one, then one for 20 concurrent writers
