"""The runner in-process against a real Redis: order, recovery of pending entries, dead letters,
fencing, rebalancing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import redis

from streams.catalog import StreamSpec
from streams.process import blocking_redis
from tests.support.procs import wait_for
from workers.leases import Leases, lease_key
from workers.runner import Runner
from workers.sdk import Message, Who, Worker

SPEC = StreamSpec("jobs", 2)


def fill(client: redis.Redis, n: int, *, channels: int = 4, spec: StreamSpec = SPEC) -> list[str]:
    """n entries, channel i % channels in partition (i % channels) % partitions; returns their ids."""
    ids = []
    for i in range(n):
        channel = i % channels
        key = spec.keys[channel % spec.partitions]
        fields = {"channel": f"jobs:{channel}", "user": "u1", "client": "c1", "data": json.dumps({"seq": i}), "ts": "1"}
        ids.append(client.xadd(key, fields))
    return ids


class Collect(Worker):
    group = "g"
    streams = ["jobs"]
    batch = 5

    def __init__(self, *, name: str, fail: Callable[[Message], bool] = lambda m: False) -> None:
        super().__init__(name=name)
        self.seen: list[tuple[str, int]] = []
        self.joined: list[Who] = []
        self._fail = fail

    def on_message(self, channel: str, message: Message) -> None:
        if self._fail(message):
            raise RuntimeError(f"cannot take {message.id}")
        self.seen.append((channel, message.json()["seq"]))

    async def on_join(self, channel: str, who: Who) -> None:  # async handlers are awaited
        self.joined.append(who)


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def runners(redis_url: str) -> Iterator[Callable[..., Runner]]:
    started: list[tuple[Runner, threading.Thread]] = []

    def start(worker: Worker, *, lease_seconds: float = 3.0, max_deliveries: int = 3, run: bool = True) -> Runner:
        runner = Runner(worker, client=blocking_redis(block_ms=100), keys=SPEC.keys, lease_seconds=lease_seconds,
                        max_deliveries=max_deliveries, block_ms=100)  # fmt: skip
        if run:
            thread = threading.Thread(target=runner.run, daemon=True)
            thread.start()
            started.append((runner, thread))
        return runner

    yield start
    for runner, thread in started:
        runner.stop()
        thread.join(timeout=10)


def by_channel(seen: list[tuple[str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for channel, seq in seen:
        out.setdefault(channel, []).append(seq)
    return out


def test_issue12_item1_one_worker_handles_every_entry_in_order_and_acks_it(
    raw: redis.Redis, runners: Callable[..., Runner]
) -> None:
    fill(raw, 200)
    join = {"channel": "jobs:0", "user": "alice", "client": "c9", "data": '{"info": {"name": "Alice"}}', "ts": "5",
            "type": "join"}  # fmt: skip
    join_id = raw.xadd(SPEC.keys[0], join).decode()
    worker = Collect(name="a")
    runner = runners(worker)
    wait_for(lambda: len(worker.seen) == 200 and worker.joined, timeout=20, what="200 entries and a join")
    for channel, seqs in by_channel(worker.seen).items():
        assert seqs == sorted(seqs), channel
    assert worker.joined == [Who("alice", "c9", {"name": "Alice"}, "", join_id, 5)]
    wait_for(lambda: all(raw.xpending(k, "g")["pending"] == 0 for k in SPEC.keys), timeout=5, what="acks")
    assert runner.owned() == sorted(SPEC.keys)
    assert runner.counts.handled == 201


def test_issue12_item2_a_new_owner_first_rehandles_what_is_pending_in_the_group_in_id_order(
    raw: redis.Redis, runners: Callable[..., Runner]
) -> None:
    ids = fill(raw, 12, channels=1, spec=StreamSpec("jobs", 1))
    raw.xgroup_create(SPEC.keys[0], "g", id="0")
    # A former owner read 6 entries and died before acking them.
    delivered = raw.xreadgroup("g", "dead", {SPEC.keys[0]: ">"}, count=6)
    assert [e[0] for e in delivered[0][1]] == ids[:6]
    worker = Collect(name="a")
    runners(worker)
    wait_for(lambda: len(worker.seen) == 12, timeout=20, what="12 entries")
    assert worker.seen == [("jobs:0", i) for i in range(12)]  # the pending six first, in order
    wait_for(lambda: raw.xpending(SPEC.keys[0], "g")["pending"] == 0, timeout=5, what="acks")


def test_issue12_item2_a_worker_that_lost_its_lease_cannot_ack_over_the_new_owner(
    raw: redis.Redis, redis_url: str
) -> None:
    [entry] = fill(raw, 1, channels=1)
    key = SPEC.keys[0]
    raw.xgroup_create(key, "g", id="0")
    raw.xreadgroup("g", "a", {key: ">"})
    client = blocking_redis(block_ms=100)
    a = Leases(client, group="g", name="a", ttl_seconds=0.2)
    b = Leases(client, group="g", name="b", ttl_seconds=5)
    held = a.acquire(key)
    assert held is not None
    assert b.acquire(key) is None  # exclusive while it lives
    wait_for(lambda: not raw.exists(lease_key(key, "g")), timeout=5, what="a's lease to expire")
    assert not held.held()
    taken = b.acquire(key)
    assert taken is not None
    assert taken.token == held.token + 1  # every acquisition gets a new fencing token
    assert raw.get(lease_key(key, "g")) == f"b {taken.token}".encode()
    # a comes back (a long handler, a pause) and acks: refused, the entry stays pending for b.
    assert a.ack(held, [entry]) == -1
    assert a.renew(held) is False
    assert raw.xpending(key, "g")["pending"] == 1
    assert b.ack(taken, [entry]) == 1
    a.release(held)  # not a's any more: a release leaves b's lease alone
    assert raw.get(lease_key(key, "g")) == f"b {taken.token}".encode()


def test_issue12_item2_an_entry_that_keeps_failing_is_dead_lettered_and_its_partition_moves_on(
    raw: redis.Redis, runners: Callable[..., Runner]
) -> None:
    ids = fill(raw, 10, channels=1, spec=StreamSpec("jobs", 1))
    poison = ids[3]
    worker = Collect(name="a", fail=lambda m: m.id == poison.decode())
    runner = runners(worker, max_deliveries=3)
    wait_for(lambda: len(worker.seen) == 9, timeout=30, what="the nine good entries")
    assert worker.seen == [("jobs:0", i) for i in range(10) if i != 3]  # nothing after it ran before it
    [(_, dead)] = raw.xrange("rtgw:dead:{jobs:0}")
    assert (dead[b"orig_id"], dead[b"deliveries"], dead[b"group"], dead[b"consumer"]) == (poison, b"3", b"g", b"a")
    assert dead[b"error"] == f"RuntimeError: cannot take {poison.decode()}".encode()
    assert (runner.counts.failed, runner.counts.dead) == (3, 1)
    wait_for(lambda: raw.xpending(SPEC.keys[0], "g")["pending"] == 0, timeout=5, what="acks")


def test_issue12_item2_a_second_worker_gets_a_fair_share_without_restarting_the_first(
    raw: redis.Redis, runners: Callable[..., Runner]
) -> None:
    first = runners(Collect(name="a"), lease_seconds=1.5)
    wait_for(lambda: len(first.owned()) == 2, timeout=10, what="a to own both partitions")
    second = runners(Collect(name="b"), lease_seconds=1.5)
    wait_for(lambda: len(first.owned()) == len(second.owned()) == 1, timeout=10, what="one partition each")
    assert set(first.owned()) | set(second.owned()) == set(SPEC.keys)
    fill(raw, 40)
    wait_for(lambda: all(raw.xpending(k, "g")["pending"] == 0 for k in SPEC.keys)
             and raw.xinfo_groups(SPEC.keys[0])[0]["lag"] == 0, timeout=10, what="acks")  # fmt: skip


def test_issue12_item2_a_worker_runs_on_a_redis_cluster(cluster_url: str) -> None:
    from realtime.redis import get_redis

    client = get_redis()
    spec = StreamSpec("jobs", 4)  # four slots, spread over the masters
    for i in range(40):
        client.xadd(spec.keys[i % 4], {"channel": f"jobs:{i % 4}", "data": json.dumps({"seq": i}), "ts": "1"})
    worker = Collect(name="a", fail=lambda m: m.json()["seq"] == 5)
    runner = Runner(worker, client=blocking_redis(block_ms=100), keys=spec.keys, lease_seconds=3.0,
                    max_deliveries=2, block_ms=100)  # fmt: skip
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(worker.seen) == 39 and runner.counts.dead == 1, timeout=30, what="39 handled, 1 dead")
        wait_for(lambda: all(client.xpending(k, "g")["pending"] == 0 for k in spec.keys), timeout=10, what="acks")
        assert client.xlen("rtgw:dead:{jobs:1}") == 1
        assert all(client.get(lease_key(k, "g")) for k in spec.keys)
    finally:
        runner.stop()
        thread.join(timeout=10)
    assert not any(client.exists(lease_key(k, "g")) for k in spec.keys)
    assert runner.counts.fenced_acks == 0


@dataclass(frozen=True)
class FakeEvent:
    kind: str
    channel: str
    info: dict[str, Any]


class FakeLifecycle:
    """The lifecycle interface h12-life implements: `active` before a channel's first entry,
    `inactive` for each of those channels at the next `due`."""

    made: ClassVar[list[tuple[str, str, float]]] = []

    def __init__(self, client: Any, *, key: str, group: str, idle_seconds: float) -> None:
        self.made.append((key, group, idle_seconds))
        self.active: set[str] = set()

    def before(self, message: Any) -> list[FakeEvent]:
        if message.channel in self.active:
            return []
        self.active.add(message.channel)
        return [FakeEvent("active", message.channel, {"first": message.id})]

    def due(self, now_ms: int) -> list[FakeEvent]:
        gone, self.active = self.active, set()
        return [FakeEvent("inactive", channel, {}) for channel in sorted(gone)]


class Lively(Collect):
    idle_seconds = 7.0

    def on_channel_active(self, channel: str, info: dict[str, Any]) -> None:
        self.seen.append((f"active {channel}", -1))

    def on_channel_inactive(self, channel: str, info: dict[str, Any]) -> None:
        self.seen.append((f"inactive {channel}", -1))


def test_issue12_item1_the_lifecycle_events_reach_the_handlers_in_order(
    raw: redis.Redis, runners: Callable[..., Runner], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.runner.LIFECYCLE", f"{__name__}.FakeLifecycle")
    FakeLifecycle.made.clear()
    fill(raw, 2, channels=1, spec=StreamSpec("jobs", 1))
    worker = Lively(name="a")
    runners(worker)
    wait_for(lambda: ("inactive jobs:0", -1) in worker.seen, timeout=10, what="the inactive event")
    assert worker.seen[:4] == [("active jobs:0", -1), ("jobs:0", 0), ("jobs:0", 1), ("inactive jobs:0", -1)]
    assert sorted(FakeLifecycle.made) == [(key, "g", 7.0) for key in SPEC.keys]


def test_issue12_item1_concurrency_handles_partitions_side_by_side_each_in_order(
    raw: redis.Redis, redis_url: str
) -> None:
    fill(raw, 200)
    worker = Collect(name="a")
    runner = Runner(worker, client=blocking_redis(block_ms=100), keys=SPEC.keys, lease_seconds=3.0,
                    max_deliveries=3, concurrency=2, block_ms=100)  # fmt: skip
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(worker.seen) == 200, timeout=20, what="200 entries")
    finally:
        runner.stop()
        thread.join(timeout=10)
    for channel, seqs in by_channel(worker.seen).items():
        assert seqs == sorted(seqs), channel
    assert all(raw.xpending(k, "g")["pending"] == 0 for k in SPEC.keys)


def test_issue12_item2_a_partition_marked_for_release_keeps_its_lease_until_given_up(
    raw: redis.Redis, runners: Callable[..., Runner]
) -> None:
    # A rebalance marks extras for release; the loop gives them up after the entry in hand, which
    # may take longer than the lease: the heartbeat must keep renewing them until then.
    runner = runners(Collect(name="a"), lease_seconds=1.0, run=False)
    runner._heartbeat()  # takes both partitions
    owned = list(runner._owned.values())
    assert len(owned) == 2
    for o in owned:
        o.release = True
    for _ in range(4):  # 1.6 s: past the 1 s lease
        time.sleep(0.4)
        runner._heartbeat()
    assert all(o.lease.held() for o in owned)
    assert all(raw.get(lease_key(o.key, "g")) == o.lease.value.encode() for o in owned)


def test_issue12_item2_a_deleted_partition_is_created_again_and_read_on(
    raw: redis.Redis, runners: Callable[..., Runner]
) -> None:
    fill(raw, 4)
    worker = Collect(name="a")
    runners(worker)
    wait_for(lambda: len(worker.seen) == 4, timeout=10, what="4 entries")
    raw.delete(*SPEC.keys)  # an operator drops the streams (and with them the group)
    time.sleep(0.3)
    fill(raw, 4)
    wait_for(lambda: len(worker.seen) == 8, timeout=10, what="4 more after the delete")
