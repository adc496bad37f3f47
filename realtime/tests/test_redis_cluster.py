"""The event loop's client on a real 3-master / 3-replica Redis Cluster (devcluster.redis_topology):
each key lands on the master that owns its slot, MOVED and ASK are followed without an error and
without a second copy, a master's failover is survived, and the stream writer's script runs there."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from devcluster.redis_topology import ClusterRedis
from partitions.rules import StreamTarget
from realtime.redis_async import RedisUnavailable, close_async_redis, get_async_redis, open_client
from realtime.redis_cluster import PipelinedCluster
from realtime.redis_url import parse
from streams.idempotency import PublicationKey
from streams.writer import rate_limit_hit_async, stream_append_async, stream_key


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterRedis]:
    topology = ClusterRedis(Path(tmp_path_factory.mktemp("cluster")))
    topology.start()
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture
def fresh(cluster: ClusterRedis) -> ClusterRedis:
    cluster.wait_ok()
    for node in cluster.masters():
        cluster.servers[cluster.ports.index(node["port"])].client().flushall()
    return cluster


def owners(cluster: ClusterRedis) -> list[int]:
    """The port of the master that owns each slot, as the cluster says now."""
    ports = [0] * 16384
    asked = node(cluster, cluster.live_ports()[0])  # not one this test killed
    for start, end, master, *_ in asked.execute_command("CLUSTER", "SLOTS"):
        ports[start : end + 1] = [int(master[1])] * (end - start + 1)
    return ports


def owner(cluster: ClusterRedis, slot: int) -> int:
    return owners(cluster)[slot]


def slots_of(cluster: ClusterRedis, port: int) -> set[int]:
    return {slot for slot, owner in enumerate(owners(cluster)) if owner == port}


def count_in_slot(cluster: ClusterRedis, port: int, key: str) -> int:
    """Keys of `key`'s slot on node `port` (a plain client cannot ask a node for a key it does not own)."""
    return int(node(cluster, port).execute_command("CLUSTER", "COUNTKEYSINSLOT", key_slot(key.encode())))


def node(cluster: ClusterRedis, port: int) -> redis.Redis:
    client: redis.Redis = cluster.servers[cluster.ports.index(port)].client()
    return client


def key_in(slots: set[int], prefix: str = "t:stream") -> str:
    return next(f"{prefix}:{{p:{i}}}" for i in range(1_000_000) if key_slot(f"{prefix}:{{p:{i}}}".encode()) in slots)


def client_for(cluster: ClusterRedis, **kwargs: Any) -> PipelinedCluster:
    client = open_client(parse(cluster.url), timeout=1.0, **kwargs)
    assert isinstance(client, PipelinedCluster)
    return client


def test_issue11_item2_keys_in_different_slots_land_on_their_owners(fresh: ClusterRedis) -> None:
    keys = [f"t:stream:{{chat:{p}}}" for p in range(16)]

    async def body() -> None:
        client = client_for(fresh)
        try:
            await asyncio.gather(*(client.submit("XADD", key, "*", "n", i) for i, key in enumerate(keys * 3)))
        finally:
            await client.close()

    asyncio.run(body())
    owners = set()
    for key in keys:
        port = owner(fresh, node(fresh, fresh.ports[0]).execute_command("CLUSTER", "KEYSLOT", key))
        owners.add(port)
        assert node(fresh, port).xlen(key) == 3  # every write of this key, on its owner, once
    assert len(owners) == 3  # 16 partitions spread over the 3 masters


def test_issue11_item2_moved_after_reshard_is_followed_without_duplicates(
    fresh: ClusterRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    redirects: list[str] = []
    original = PipelinedCluster._redirected

    async def spy(self: PipelinedCluster, args: tuple[object, ...], slot: int, reply: Any) -> Any:
        redirects.append(str(reply).split()[0])
        return await original(self, args, slot, reply)

    monkeypatch.setattr(PipelinedCluster, "_redirected", spy)
    source, target = (n["port"] for n in fresh.masters()[:2])
    before = owners(fresh)

    async def body() -> list[Any]:
        client = client_for(fresh)
        try:
            await client.execute("XADD", "t:warm", "*", "n", 0)  # the slot map is loaded and cached
            fresh.reshard(source, target, 20)  # redis-cli moves 20 slots (and their keys) behind its back
            after = owners(fresh)
            moved = {slot for slot, port in enumerate(before) if port == source and after[slot] == target}
            assert moved
            key = key_in(moved)
            return [key, *[await client.execute("XADD", key, "*", "n", i) for i in range(3)]]
        finally:
            await client.close()

    key, *ids = asyncio.run(body())
    assert redirects == ["MOVED"]  # the first write learnt the new owner; the next ones went there
    assert node(fresh, target).xlen(key) == 3
    assert [entry[0].decode() for entry in node(fresh, target).xrange(key)] == [i.decode() for i in ids]
    assert count_in_slot(fresh, source, key) == 0


def _migrating(cluster: ClusterRedis, slot: int, source: int, target: int) -> None:
    """Half a migration by hand: the slot MIGRATING on its owner, IMPORTING on the target, and the
    slot's keys already moved: a command for them gets `-ASK slot target`."""
    ids = {n["port"]: n["id"] for n in cluster.nodes()}
    node(cluster, target).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
    node(cluster, source).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
    keys = node(cluster, source).execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
    node(cluster, source).execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)


def _finish_migration(cluster: ClusterRedis, slot: int, target: int) -> None:
    ids = {n["port"]: n["id"] for n in cluster.nodes()}
    for port in [target, *(n["port"] for n in cluster.masters() if n["port"] != target)]:
        node(cluster, port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])
    cluster.wait_ok()


def test_issue11_item2_ask_during_a_migration_goes_to_the_target_once(
    fresh: ClusterRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    redirects: list[str] = []
    original = PipelinedCluster._redirected

    async def spy(self: PipelinedCluster, args: tuple[object, ...], slot: int, reply: Any) -> Any:
        redirects.append(str(reply).split()[0])
        return await original(self, args, slot, reply)

    monkeypatch.setattr(PipelinedCluster, "_redirected", spy)
    source, target = (n["port"] for n in fresh.masters()[:2])
    key = key_in(slots_of(fresh, source))
    slot = key_slot(key.encode())

    async def body() -> None:
        client = client_for(fresh)
        try:
            await client.execute("XADD", key, "*", "n", 0)
            _migrating(fresh, slot, source, target)
            await client.execute("XADD", key, "*", "n", 1)  # ASK: ASKING + XADD on the target
            await client.execute("XADD", key, "*", "n", 2)
            assert client.slots[slot] is client.nodes["127.0.0.1", source]  # ASK does not change the map
        finally:
            await client.close()

    try:
        asyncio.run(body())
    finally:
        _finish_migration(fresh, slot, target)
    assert redirects == ["ASK", "ASK"]
    assert [fields[b"n"] for _, fields in node(fresh, target).xrange(key)] == [b"0", b"1", b"2"]
    assert count_in_slot(fresh, source, key) == 0


def test_issue11_item2_writer_script_and_rate_limit_on_the_cluster(fresh: ClusterRedis, settings: Any) -> None:
    """The append script (retention: one key; idempotency: two keys in one slot) and INCR+EXPIRE,
    routed by key; NOSCRIPT on a master that never saw the script loads it there."""
    settings.REDIS_URL = fresh.url
    for master in fresh.masters():
        node(fresh, master["port"]).script_flush()  # every master answers NOSCRIPT first
    aged = StreamTarget("chat", 5, None, True, None, max_age_seconds=3600)
    key = PublicationKey.of(user="u", client="c", channel="chat:1", key="k1", data=b"{}", binary=False)

    async def body() -> list[Any]:
        try:
            return [
                await stream_append_async(target=aged, channel="chat:1", user="u", client="c", data=b"{}"),
                await stream_append_async(
                    target=aged, channel="chat:1", user="u", client="c", data=b"{}", idempotency=key
                ),
                await stream_append_async(
                    target=aged, channel="chat:1", user="u", client="c", data=b"{}", idempotency=key
                ),
                await rate_limit_hit_async(rule_id=1, who="u", limit=1, window=60),
                await rate_limit_hit_async(rule_id=1, who="u", limit=1, window=60),
            ]
        finally:
            await close_async_redis()

    first, second, retry, hit1, hit2 = asyncio.run(body())
    assert (second.duplicate, retry.duplicate, retry.entry_id) == (False, True, second.entry_id)
    assert first.entry_id != second.entry_id
    assert (hit1, hit2) == (False, True)
    stream = stream_key("chat", 5)
    assert node(fresh, owner(fresh, key_slot(stream.encode()))).xlen(stream) == 2


def test_issue11_item2_a_master_failover_is_followed(fresh: ClusterRedis) -> None:
    """CLUSTER FAILOVER on one master's replica mid-run: writes go on (the demoted master answers
    MOVED); any write that failed was refused, and every acknowledged id is in the stream."""
    master = fresh.masters()[0]["port"]
    key = key_in(slots_of(fresh, master))
    acknowledged: list[str] = []
    failed = 0

    async def body() -> int:
        nonlocal failed
        client = client_for(fresh, ack="replicated", ack_replicas=1)
        try:
            acknowledged.append((await client.execute("XADD", key, "*", "n", "before")).decode())
            new_master = await asyncio.get_running_loop().run_in_executor(None, fresh.failover, master)
            deadline = asyncio.get_running_loop().time() + 10
            while len(acknowledged) < 5 and asyncio.get_running_loop().time() < deadline:
                try:
                    acknowledged.append((await client.execute("XADD", key, "*", "n", "after")).decode())
                except RedisUnavailable:
                    failed += 1
                    await asyncio.sleep(0.1)
            return new_master
        finally:
            await client.close()

    new_master = asyncio.run(body())
    assert len(acknowledged) == 5, f"writes did not resume within 10 s ({failed} refused)"
    stored = [entry[0].decode() for entry in node(fresh, new_master).xrange(key)]
    assert stored == acknowledged


def test_issue11_item2_get_async_redis_follows_a_cluster_url(fresh: ClusterRedis, settings: Any) -> None:
    settings.REDIS_URL = fresh.url

    async def body() -> Any:
        try:
            return await get_async_redis().execute("XADD", "t:stream:{x}", "*", "a", "b")
        finally:
            await close_async_redis()

    assert asyncio.run(body())
    assert node(fresh, owner(fresh, key_slot(b"x"))).xlen("t:stream:{x}") == 1


def test_issue11_item2_tryagain_on_a_half_migrated_slot_is_sent_again_within_the_deadline(
    fresh: ClusterRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idempotent append touches two keys of one slot. While the stream has moved and its
    idempotency key has not, the source answers TRYAGAIN (nothing executed); once both have moved,
    the command goes to the target with ASKING. One entry, stored once."""
    redirects: list[str] = []
    original = PipelinedCluster._redirected

    async def spy(self: PipelinedCluster, args: tuple[object, ...], slot: int, reply: Any) -> Any:
        redirects.append(str(reply).split()[0])
        return await original(self, args, slot, reply)

    monkeypatch.setattr(PipelinedCluster, "_redirected", spy)
    asked: list[int] = []
    asking = PipelinedCluster._asking

    async def asking_spy(self: PipelinedCluster, target_node: Any, args: tuple[object, ...]) -> Any:
        asked.append(target_node.endpoint.port)
        return await asking(self, target_node, args)

    monkeypatch.setattr(PipelinedCluster, "_asking", asking_spy)
    source, target = (n["port"] for n in fresh.masters()[:2])
    stream = key_in(slots_of(fresh, source))
    tag = stream[stream.index("{") : stream.index("}") + 1]
    idem = f"t:idem:{tag}"
    slot = key_slot(stream.encode())
    script = "redis.call('SET', KEYS[2], 'x') return redis.call('XADD', KEYS[1], '*', 'n', ARGV[1])"
    sha = node(fresh, source).script_load(script)
    node(fresh, target).script_load(script)
    node(fresh, source).set(idem, "seed")
    node(fresh, source).xadd(stream, {"n": "seed"})
    ids = {n["port"]: n["id"] for n in fresh.nodes()}

    async def body() -> Any:
        client = client_for(fresh)
        try:
            await client.execute("XLEN", stream)  # the map is loaded
            node(fresh, target).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
            node(fresh, source).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
            node(fresh, source).execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", stream)
            write = asyncio.ensure_future(client.execute("EVALSHA", sha, 2, stream, idem, "1"))
            await asyncio.sleep(0.05)  # TRYAGAIN meanwhile (one key here, one there)
            assert not write.done()
            node(fresh, source).execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", idem)
            return await write
        finally:
            await client.close()

    try:
        entry_id = asyncio.run(body())
    finally:
        _finish_migration(fresh, slot, target)
    assert redirects == ["TRYAGAIN"]  # then ASK, within the same call
    assert asked == [target]
    assert [e[0] for e in node(fresh, target).xrange(stream)][-1] == entry_id
    assert node(fresh, target).xlen(stream) == 2  # the seed and this write, once


def test_issue11_item2_a_killed_master_is_unavailable_then_its_replica_takes_writes(tmp_path: Path) -> None:
    """kill -9 of a master: writes for its slots fail with RedisUnavailable (never a false ok)
    until the cluster promotes its replica; the client finds the new owner by itself."""
    cluster = ClusterRedis(tmp_path / "cluster")
    cluster.start()
    try:
        master = cluster.masters()[0]["port"]
        key = key_in(slots_of(cluster, master))
        acknowledged: list[bytes] = []
        refused = 0

        async def body() -> float:
            nonlocal refused
            client = client_for(cluster)
            loop = asyncio.get_running_loop()
            try:
                acknowledged.append(await client.execute("XADD", key, "*", "n", "before"))
                cluster.servers[cluster.ports.index(master)].kill()
                killed = loop.time()
                while loop.time() < killed + 20:
                    try:
                        acknowledged.append(await client.execute("XADD", key, "*", "n", "after"))
                        return loop.time() - killed
                    except RedisUnavailable:
                        refused += 1
                        await asyncio.sleep(0.1)
                raise AssertionError(f"writes did not resume within 20 s ({refused} refused)")
            finally:
                await client.close()

        took = asyncio.run(body())
        assert refused > 0
        assert took < 10  # node timeout 2 s, then the election
        cluster.wait_ok()  # every live node agrees on the new owner
        new_owner = owner(cluster, key_slot(key.encode()))
        assert new_owner != master
        assert [e[0] for e in node(cluster, new_owner).xrange(key)] == acknowledged
    finally:
        cluster.stop()
