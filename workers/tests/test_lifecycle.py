"""workers.lifecycle against a real Redis: the log is a real stream with a real consumer group, the
"owner" below reads it with XREADGROUP and acks with XACK as the SDK's runner does. Entry ids are
explicit so the log's clock is the test's: no sleeping."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import redis

from realtime.redis import Client, get_redis
from streams.joinleave import MEMBERS_TTL_MS
from workers.lifecycle import DUE_LIMIT, STATE_TTL_MS, Event, Lifecycle, lifecycle_key, lifecycle_state

KEY = "rtgw:stream:{chat:0}"
GROUP = "bots"
IDLE = 30  # seconds
T = 1_700_000_000_000  # the log's clock starts here (ms)


@dataclass(frozen=True)
class Entry:
    """The fields of streams.reader.Message that the lifecycle reads."""

    id: str
    channel: str
    user: str
    client: str
    type: str


class Owner:
    """One owner of the partition: a Lifecycle and the group reads/acks of a runner."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name
        self.life = Lifecycle(client, key=KEY, group=GROUP, idle_seconds=IDLE)

    def read(self, count: int = 100) -> list[Entry]:
        """New entries delivered to this owner (pending until acked)."""
        reply = self.client.xreadgroup(GROUP, self.name, {KEY: ">"}, count=count)
        return [_entry(i, f) for _, entries in reply or [] for i, f in entries]

    def handle(self, entries: list[Entry], *, ack: bool = True) -> list[tuple[str, str]]:
        """before() for each entry in order; returns (kind, channel) of every event, entry ids for messages."""
        seen: list[tuple[str, str]] = []
        for entry in entries:
            seen += [(e.kind, e.channel) for e in self.life.before(entry)]
            seen.append((entry.type, entry.id))
            if ack:
                self.client.xack(KEY, GROUP, entry.id)
        return seen

    def due(self, at_ms: int) -> list[tuple[str, str]]:
        return [(e.kind, e.channel) for e in self.life.due(at_ms)]


def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> Entry:
    text = {k.decode(): v.decode() for k, v in fields.items()}
    return Entry(entry_id.decode(), text["channel"], text["user"], text["client"], text.get("type", "message"))


def append(client: Client, at_s: float, channel: str, kind: str = "message", who: str = "c1") -> str:
    """An entry at T + at_s seconds, like streams.writer writes it (a join/leave has `type`)."""
    ms = T + int(at_s * 1000)
    fields = {"channel": channel, "user": f"u-{who}", "client": who, "data": "{}", "ts": str(ms)}
    if kind != "message":
        fields["type"] = kind
    return client.xadd(KEY, fields, id=f"{ms}-*").decode()  # type: ignore[no-any-return,arg-type]


@pytest.fixture
def client(redis_url: str) -> Client:
    redis_client = get_redis()
    redis_client.xgroup_create(KEY, GROUP, id="0", mkstream=True)
    return redis_client


def at(seconds: float) -> int:
    return T + int(seconds * 1000)


def test_issue12_item3_active_once_then_inactive_once_after_the_idle_time(client: Client) -> None:
    owner = Owner(client, "w1")
    ids = [append(client, s, "chat:a") for s in (0, 1, 2)]
    assert owner.handle(owner.read()) == [("active", "chat:a"), *(("message", i) for i in ids)]
    assert owner.due(at(2 + IDLE) - 1) == []  # idle 29.999 s: still active
    assert owner.due(at(2 + IDLE)) == [("inactive", "chat:a")]
    assert owner.due(at(2 + IDLE) + 5000) == []  # once
    assert lifecycle_state(client, key=KEY, group=GROUP) == {"active": [], "idle": [], "closing": []}
    # A later message starts a new period: active once more.
    later = append(client, 100, "chat:a")
    assert owner.handle(owner.read()) == [("active", "chat:a"), ("message", later)]


def test_issue12_item3_events_carry_the_period(client: Client) -> None:
    owner = Owner(client, "w1")
    first = append(client, 0, "chat:a", who="alice")
    append(client, 3, "chat:a")
    [entry, second] = owner.read()
    [active] = owner.life.before(entry)
    assert active == Event("active", "chat:a", {"entry_id": first, "by": "message", "user": "u-alice",
                                                "client": "alice", "at_ms": at(0)})  # fmt: skip
    assert owner.life.before(second) == []
    client.xack(KEY, GROUP, first, second.id)
    [inactive] = owner.life.due(at(3 + IDLE))
    assert inactive.info == {"active_since_ms": at(0), "first_entry_id": first, "last_activity_ms": at(3),
                             "idle_ms": IDLE * 1000}  # fmt: skip


def test_issue12_item3_members_keep_a_channel_active(client: Client) -> None:
    owner = Owner(client, "w1")
    join_a, join_b = append(client, 0, "room:1", "join", "a"), append(client, 1, "room:1", "join", "b")
    assert owner.handle(owner.read()) == [("active", "room:1"), ("join", join_a), ("join", join_b)]
    assert owner.due(at(10 * IDLE)) == []  # members: never idle, however long
    leave_a = append(client, 400, "room:1", "leave", "a")
    assert owner.handle(owner.read()) == [("leave", leave_a)]
    assert owner.due(at(10 * IDLE)) == []  # b is still there
    leave_b = append(client, 500, "room:1", "leave", "b")
    assert owner.handle(owner.read()) == [("leave", leave_b)]
    assert owner.due(at(500 + IDLE) - 1) == []  # idle counts from the last leave
    assert owner.due(at(500 + IDLE)) == [("inactive", "room:1")]


def test_issue12_item3_a_leave_alone_does_not_activate(client: Client) -> None:
    owner = Owner(client, "w1")
    leave = append(client, 0, "room:2", "leave", "x")  # joined before the switch was on, say
    assert owner.handle(owner.read()) == [("leave", leave)]
    assert owner.due(at(10 * IDLE)) == []


def test_issue12_item3_an_idle_gap_between_two_entries_ends_the_period(client: Client) -> None:
    """Without a due() call in between (a late tick, a backlog): inactive, then the new active."""
    owner = Owner(client, "w1")
    append(client, 0, "chat:a")
    later = append(client, IDLE + 1, "chat:a")
    events = owner.handle(owner.read())
    assert events[-3:] == [("inactive", "chat:a"), ("active", "chat:a"), ("message", later)]
    assert owner.due(at(IDLE + 2)) == []  # that inactive is not fired again


def test_issue12_item3_a_backlog_not_yet_read_is_not_idleness(client: Client) -> None:
    owner = Owner(client, "w1")
    append(client, 0, "chat:a")
    owner.handle(owner.read(count=1))
    append(client, 10, "chat:a")  # in the log, not handled yet: the owner lags
    assert owner.due(at(100)) == []  # the log's clock stops at the first entry not handled
    entries = owner.read()
    owner.handle(entries, ack=False)  # handled, not acked: still "not finished"
    assert owner.due(at(100)) == []
    client.xack(KEY, GROUP, *(e.id for e in entries))
    assert owner.due(at(10 + IDLE)) == [("inactive", "chat:a")]


def test_issue12_item3_a_new_owner_does_not_fire_a_second_active(client: Client) -> None:
    first = Owner(client, "w1")
    e1 = append(client, 0, "chat:a")
    append(client, 1, "chat:a")
    # w1 dispatches active and handles e1, then dies before acking it (and before e2).
    assert first.handle(first.read(count=1), ack=False) == [("active", "chat:a"), ("message", e1)]
    # w2 takes the partition over: it re-handles w1's pending entry, then the rest.
    second = Owner(client, "w2")
    claimed = client.xclaim(KEY, GROUP, "w2", 0, [e1])
    pending = [_entry(i, f) for i, f in claimed]
    events = second.handle(pending) + second.handle(second.read())
    assert [e for e in events if e[0] == "active"] == []
    assert second.due(at(1 + IDLE)) == [("inactive", "chat:a")]


def test_issue12_item3_a_new_owner_does_not_miss_an_inactive(client: Client) -> None:
    first = Owner(client, "w1")
    append(client, 0, "chat:a")
    append(client, 0.5, "chat:b")
    first.handle(first.read())
    # w1 claims both inactive and dies before its handlers returned (it never calls again).
    assert sorted(first.due(at(1 + IDLE))) == [("inactive", "chat:a"), ("inactive", "chat:b")]
    assert lifecycle_state(client, key=KEY, group=GROUP)["closing"] == ["chat:a", "chat:b"]
    second = Owner(client, "w2")
    assert sorted(second.due(at(2 + IDLE))) == [("inactive", "chat:a"), ("inactive", "chat:b")]
    assert second.due(at(3 + IDLE)) == []  # its second call confirmed them
    assert lifecycle_state(client, key=KEY, group=GROUP)["closing"] == []


def test_issue12_item3_an_entry_of_a_channel_left_closing_gets_the_inactive_first(client: Client) -> None:
    first = Owner(client, "w1")
    append(client, 0, "chat:a")
    first.handle(first.read())
    assert first.due(at(IDLE)) == [("inactive", "chat:a")]  # claimed, w1 dies
    second = Owner(client, "w2")
    later = append(client, IDLE + 5, "chat:a")
    assert second.handle(second.read()) == [("inactive", "chat:a"), ("active", "chat:a"), ("message", later)]
    assert second.due(at(IDLE + 6)) == []  # no third inactive


def test_issue12_item3_an_owner_that_called_again_leaves_nothing_to_repeat(client: Client) -> None:
    first = Owner(client, "w1")
    append(client, 0, "chat:a")
    first.handle(first.read())
    assert first.due(at(IDLE)) == [("inactive", "chat:a")]
    assert first.due(at(IDLE + 1)) == []  # dispatched: confirmed
    first.life.close()
    assert Owner(client, "w2").due(at(IDLE + 2)) == []


def test_issue12_item3_close_writes_the_activity_kept_in_memory(client: Client) -> None:
    first = Owner(client, "w1")
    append(client, 0, "chat:a")
    append(client, 20, "chat:a")  # a hot-path message: its time is only in memory
    first.handle(first.read())
    first.life.close()  # the partition is handed over cleanly
    second = Owner(client, "w2")
    assert second.due(at(IDLE + 1)) == []  # idle from 20 s, not from 0 s
    assert second.due(at(20 + IDLE)) == [("inactive", "chat:a")]


def test_issue12_item3_many_channels_expire_in_due_batches(client: Client) -> None:
    owner = Owner(client, "w1")
    pipe = client.pipeline(transaction=False)
    for i in range(50):
        pipe.xadd(KEY, {"channel": f"c:{i}", "user": "u", "client": "c", "data": "{}"}, id=f"{T + i}-0")
    pipe.execute()
    events = owner.handle(owner.read())
    assert sum(1 for kind, _ in events if kind == "active") == 50
    assert owner.due(at(IDLE) + 9) == [("inactive", f"c:{i}") for i in range(10)]  # the first 10 expired
    assert len(owner.due(at(IDLE) + 100)) == 40


def test_issue12_item3_it_works_on_a_redis_cluster(cluster_url: str) -> None:
    cluster = get_redis()
    cluster.xgroup_create(KEY, GROUP, id="0", mkstream=True)
    owner = Owner(cluster, "w1")
    append(cluster, 0, "chat:a")
    join = append(cluster, 1, "chat:a", "join", "x")
    assert owner.handle(owner.read())[0] == ("active", "chat:a")
    assert owner.due(at(100)) == []
    leave = append(cluster, 101, "chat:a", "leave", "x")
    assert owner.handle(owner.read()) == [("leave", leave)]
    assert owner.due(at(101 + IDLE)) == [("inactive", "chat:a")]
    assert join


def test_redis_errors_reach_the_caller(client: Client) -> None:
    """The runner decides what a Redis outage means; the lifecycle does not swallow it."""
    client.set(f"{Lifecycle(client, key=KEY, group=GROUP, idle_seconds=IDLE).base}:active", "not a hash")
    owner = Owner(client, "w1")
    append(client, 0, "chat:a")
    with pytest.raises(redis.ResponseError):
        owner.handle(owner.read())


def test_issue12_item3_an_entry_handled_again_changes_nothing(client: Client) -> None:
    """A join retried after the member's leave (its handler failed; the owner died and the next one
    re-handles it) must not bring the member back: the channel would never go idle."""
    owner = Owner(client, "w1")
    append(client, 0, "room:1", "join", "a")
    append(client, 1, "room:1", "leave", "a")
    join, leave = owner.read()
    assert owner.handle([join], ack=False) == [("active", "room:1"), ("join", join.id)]
    assert owner.handle([leave]) == [("leave", leave.id)]
    again = Owner(client, "w2")
    assert again.handle([join]) == [("join", join.id)]  # no second active, and `a` stays gone
    assert again.due(at(1 + IDLE)) == [("inactive", "room:1")]


def test_issue12_item3_due_writes_the_activity_of_thousands_of_channels(client: Client) -> None:
    """Found by bench.workers_lifecycle: due() sends the activity of every channel touched since the
    last tick in one call; 5,000 of them overflowed Lua's stack ("too many results to unpack")."""
    owner = Owner(client, "w1")
    channels = [f"c:{i}" for i in range(5000)]
    for i, channel in enumerate(channels):  # each one active (one script call each)
        owner.life.before(Entry(f"{T}-{i}", channel, "u", "c", "message"))
    for i, channel in enumerate(channels):  # then a hot-path message each, 10 s later: memory only
        owner.life.before(Entry(f"{T + 10_000}-{i}", channel, "u", "c", "message"))
    assert owner.due(at(IDLE)) == []  # idle since 10 s, not since 0 s: the 5,000 times were written
    assert len(owner.due(at(10 + IDLE))) == DUE_LIMIT


def test_issue12_item3_a_worker_clock_ahead_of_redis_does_not_make_a_channel_idle_early(client: Client) -> None:
    owner = Owner(client, "w1")
    entry_id = client.xadd(KEY, {"channel": "chat:now", "user": "u", "client": "c", "data": "{}"}).decode()
    owner.handle(owner.read())
    redis_ms = int(entry_id.split("-")[0])
    assert owner.due(redis_ms + 10 * IDLE * 1000) == []  # the worker's clock says 300 s later; Redis's does not
    assert lifecycle_state(client, key=KEY, group=GROUP)["active"] == ["chat:now"]


def test_issue12_item7_stream_stats_counts_the_channels_the_lifecycle_holds_active(client: Client) -> None:
    from streams.catalog import StreamSpec
    from streams.stats import streams_info

    owner = Owner(client, "w1")
    append(client, 0, "chat:a")
    append(client, 1, "chat:b")
    owner.handle(owner.read())
    [stream] = streams_info([StreamSpec("chat", 1)])
    [group] = stream.partitions[0].groups
    assert (group.name, group.active_channels) == (GROUP, 2)
    owner.due(at(1 + IDLE))
    [stream] = streams_info([StreamSpec("chat", 1)])
    assert stream.partitions[0].groups[0].active_channels == 0


def test_issue12_lifecycle_keys_expire_unless_written_again(client: Client) -> None:
    owner = Owner(client, "w1")
    append(client, 0, "chat:quiet")
    append(client, 1, "room:9", "join", "m1")
    owner.handle(owner.read())
    owner.due(at(2))
    base = lifecycle_key(KEY, GROUP)
    keys = [f"{base}:{name}" for name in ("active", "idle", "busy", "seen", "m:room:9")]
    assert all(client.exists(key) for key in keys)
    # A partition nobody owns any more (its group is gone) leaves nothing behind for ever.
    assert all(0 < client.pttl(key) <= STATE_TTL_MS for key in keys), {key: client.pttl(key) for key in keys}
    owner.due(at(IDLE + 1))
    assert client.hexists(f"{base}:closing", "chat:quiet")
    assert 0 < client.pttl(f"{base}:closing") <= STATE_TTL_MS


def test_issue12_a_member_whose_leave_never_came_is_dropped_after_the_members_ttl(client: Client) -> None:
    """Its leave was trimmed away before the worker read it, or its join/leave record expired (a
    partition whose reaper stopped): without a bound the channel would stay active for ever."""
    owner = Owner(client, "w1")
    append(client, 0, "room:lost", "join", "gone")
    append(client, 5, "room:lost")  # a message keeps the channel's time, members or not
    owner.handle(owner.read())
    assert owner.due(at(5) + MEMBERS_TTL_MS - 1) == []  # members: not idle, however long... up to the TTL
    assert owner.due(at(5) + MEMBERS_TTL_MS) == [("inactive", "room:lost")]
    assert client.exists(f"{lifecycle_key(KEY, GROUP)}:m:room:lost") == 0
    assert lifecycle_state(client, key=KEY, group=GROUP)["active"] == []
    # Its next entry starts a new period, as after any inactive.
    later = append(client, 6 + MEMBERS_TTL_MS / 1000, "room:lost")
    assert owner.handle(owner.read()) == [("active", "room:lost"), ("message", later)]
