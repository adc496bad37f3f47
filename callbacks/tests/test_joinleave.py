"""Issue 12, item 4: join and leave entries in the log for channels whose rule has log_join_leave.
The subscribe and sub_refresh bodies are the exact ones Centrifugo v6.9.1 sends (include_connection_meta
on); each callback test runs through both transports (the `call` fixture)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
import redis

from callbacks.tests.conftest import CLIENT_ID, NOW, Call
from partitions import models, services
from partitions.store import rules_store
from streams.joinleave import Member, members_key, reap, reap_async
from streams.reaper import Reaper
from streams.writer import stream_key
from tests.support.procs import free_port

pytestmark = pytest.mark.django_db

SUBSCRIBE = {"user": "42", "channel": "chat:room1", "meta": {"roles": [], "auth": "jwt"}}
MEMBER = json.dumps(["chat:room1", "42", CLIENT_ID], separators=(",", ":"))


def log_join_leave(pattern: str = "chat:*", *, on: bool = True) -> None:
    rule = models.ChannelRule.objects.get(pattern=pattern)
    rule.log_join_leave = on
    services.rule_save(rule=rule, actor="operator")  # what the admin does
    rules_store.invalidate()  # what each process's watcher does on its next poll


def keys(channel: str = "chat:room1", user: str = "42") -> tuple[str, str]:
    target = rules_store.current().target(channel=channel, user=user)
    return stream_key(target.stream, target.partition), members_key(target.stream, target.partition)


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def entries(client: redis.Redis, key: str) -> list[dict[str, str]]:
    return [fields for _, fields in client.xrange(key)]


def test_issue12_item4_subscribe_writes_a_join_and_records_the_member(
    call: Call, redis_client: redis.Redis, settings: Any
) -> None:
    log_join_leave()
    stream, members = keys()
    before = redis_ms(redis_client)
    assert call("subscribe", SUBSCRIBE) == (200, {"result": {"expire_at": NOW + 2}})
    after = redis_ms(redis_client)
    [join] = entries(redis_client, stream)
    assert join.pop("ts").isdigit()
    assert join == {"channel": "chat:room1", "user": "42", "client": CLIENT_ID, "type": "join",
                    "data": '{"info":null}'}  # fmt: skip
    # The first deadline: the first sub_refresh comes within 3 s + the interval (2 s), + the grace (1 s).
    [(member, deadline)] = redis_client.zrange(members, 0, -1, withscores=True)
    assert member == MEMBER
    assert before + 6000 <= deadline <= after + 6000
    assert redis_client.pttl(members) > 23 * 3600 * 1000  # a forgotten set expires
    # Centrifugo retrying the same subscribe (a timeout): the member is known, no second join.
    assert call("subscribe", SUBSCRIBE) == (200, {"result": {"expire_at": NOW + 2}})
    assert len(entries(redis_client, stream)) == 1


def test_issue12_item4_sub_refresh_is_the_heartbeat(call: Call, redis_client: redis.Redis) -> None:
    log_join_leave()
    stream, members = keys()
    call("subscribe", SUBSCRIBE)
    redis_client.zadd(members, {MEMBER: 1})  # as if its deadline had long passed, not yet reaped
    before = redis_ms(redis_client)
    assert call("sub_refresh", SUBSCRIBE) == (200, {"result": {"expire_at": NOW + 1}})
    after = redis_ms(redis_client)
    # The next heartbeat is due within the interval (2 s) + the grace (1 s); no second join.
    assert before + 3000 <= redis_client.zscore(members, MEMBER) <= after + 3000  # type: ignore[operator]
    assert [e["type"] for e in entries(redis_client, stream)] == ["join"]


def test_issue12_item4_a_heartbeat_of_an_unknown_member_joins_it_again(call: Call, redis_client: redis.Redis) -> None:
    # Reaped while Redis lost its heartbeat, or the switch turned on under a live subscription:
    # Centrifugo still has the subscription, so the log says it is there again.
    log_join_leave()
    stream, members = keys()
    assert call("sub_refresh", SUBSCRIBE) == (200, {"result": {"expire_at": NOW + 1}})
    assert [e["type"] for e in entries(redis_client, stream)] == ["join"]
    assert redis_client.zscore(members, MEMBER) is not None


def test_issue12_item4_switch_off_writes_nothing_and_touches_no_redis(call: Call, redis_client: redis.Redis) -> None:
    redis_client.config_resetstat()
    assert call("subscribe", SUBSCRIBE) == (200, {"result": {"expire_at": NOW + 2}})
    assert call("sub_refresh", SUBSCRIBE) == (200, {"result": {"expire_at": NOW + 1}})
    # No command reached Redis but this test's own (the reset, then this INFO).
    assert set(redis_client.info("commandstats")) == {"cmdstat_config|resetstat"}
    assert redis_client.dbsize() == 0


def test_issue12_item4_a_channel_that_stores_nothing_logs_no_join(call: Call, redis_client: redis.Redis) -> None:
    log_join_leave()
    partition_rule = models.PartitionRule.objects.get(pattern="chat:*")
    partition_rule.store = False
    services.rule_save(rule=partition_rule, actor="operator")
    rules_store.invalidate()
    assert call("subscribe", SUBSCRIBE) == (200, {"result": {"expire_at": NOW + 2}})
    assert redis_client.dbsize() == 0


def test_issue12_item4_a_join_redis_does_not_confirm_is_a_temporary_error(call: Call, settings: Any) -> None:
    from realtime.redis import reset_redis

    log_join_leave()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    reset_redis()
    status, answer = call("subscribe", SUBSCRIBE)
    assert (status, answer) == (200, {"error": {"code": 1503, "temporary": True,
                                                "message": "join not stored: message log unavailable, retry later"}})  # fmt: skip
    # A lost heartbeat does not end the subscription.
    assert call("sub_refresh", SUBSCRIBE) == (200, {"result": {"expire_at": NOW + 1}})
    reset_redis()


def test_issue12_item4_two_concurrent_reapers_emit_exactly_one_leave(redis_url: str, redis_client: redis.Redis) -> None:
    from realtime.redis import reset_redis

    target = rules_store.current().target(channel="chat:café", user="7")
    stream, members = stream_key(target.stream, target.partition), members_key(target.stream, target.partition)
    gone = [Member(target=target, channel="chat:café", user=str(u), client=f"c{u}") for u in range(1200)]
    staying = Member(target=target, channel="chat:café", user="99", client="stays")
    from streams.joinleave import member_seen

    for member in (*gone, staying):
        member_seen(member, joining=True)
    redis_client.zadd(members, {json.dumps([m.channel, m.user, m.client], ensure_ascii=False,
                                           separators=(",", ":")): 1 for m in gone}, xx=True)  # fmt: skip
    counts: list[int] = []
    start = threading.Barrier(4)

    def sync_reaper() -> None:
        start.wait()
        counts.append(reap(target.stream, target.partition))

    def async_reaper() -> None:
        start.wait()
        counts.append(asyncio.run(reap_async(target.stream, target.partition)))

    threads = [threading.Thread(target=f) for f in (sync_reaper, sync_reaper, async_reaper, async_reaper)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    reset_redis()
    assert sum(counts) == len(gone)
    leaves = [e for e in entries(redis_client, stream) if e.get("type") == "leave"]
    assert sorted((e["channel"], e["user"], e["client"], e["data"]) for e in leaves) == sorted(
        ("chat:café", m.user, m.client, '{"reason":"gone"}') for m in gone
    )
    assert all(e["ts"].isdigit() for e in leaves)
    assert redis_client.zcard(members) == 1  # the member whose heartbeat is not late stays


def test_issue12_item4_the_reaper_works_only_while_a_rule_logs_join_leave(
    redis_url: str, redis_client: redis.Redis
) -> None:
    reaper = Reaper()
    redis_client.config_resetstat()
    assert asyncio.run(reaper.reap_once()) == 0
    assert "cmdstat_evalsha" not in redis_client.info("commandstats")
    log_join_leave()
    rules_store.current()
    stream, members = keys()
    redis_client.zadd(members, {MEMBER: 1})
    assert asyncio.run(reaper.reap_once()) == 1
    assert [e["type"] for e in entries(redis_client, stream)] == ["leave"]
    # Switched off: it keeps reaping (LINGER) so members recorded before still get their leave.
    log_join_leave(on=False)
    rules_store.current()
    redis_client.zadd(members, {MEMBER: 1})
    assert asyncio.run(reaper.reap_once()) == 1


def rooms_rule(*, partitions: int = 1, max_length: int | None = None) -> models.PartitionRule:
    """The seeded `chat:*` partition rule, moved to a stream of its own."""
    rule = models.PartitionRule.objects.get(pattern="chat:*")
    rule.stream, rule.partitions, rule.max_length = "rooms", partitions, max_length
    services.rule_save(rule=rule, actor="operator")
    rules_store.invalidate()
    rules_store.current()  # loaded here: the reaper would load it on a thread (sqlite: locked)
    return rule


def gone_members(client: redis.Redis, members: str, n: int) -> None:
    """n members whose deadline has long passed, as if their heartbeats had stopped."""
    client.zadd(members, {json.dumps(["chat:room1", str(u), f"c{u}"], separators=(",", ":")): 1 for u in range(n)})


def test_issue12_leaves_are_trimmed_by_the_partition_rules_max_length_as_messages_are(
    redis_url: str, redis_client: redis.Redis
) -> None:
    rooms_rule(max_length=10)
    log_join_leave()
    rules_store.current()
    stream, members = keys()
    assert stream == "rtgw:stream:{rooms:0}"
    gone_members(redis_client, members, 1200)
    assert asyncio.run(Reaper().reap_once()) == 1200
    # MAXLEN ~ trims whole nodes of the stream (100 entries by default), as for messages.
    assert redis_client.xlen(stream) <= 10 + 100
    assert {e["type"] for e in entries(redis_client, stream)} == {"leave"}


def test_issue12_members_of_a_partition_the_rules_dropped_still_get_their_leave(
    redis_url: str, redis_client: redis.Redis
) -> None:
    rule = rooms_rule(partitions=4)
    log_join_leave()
    rules_store.current()
    reaper = Reaper()
    assert asyncio.run(reaper.reap_once()) == 0  # it knows the four partitions
    rule.partitions = 2  # the dropped partitions 2 and 3 hold no entry: the shrink is allowed
    services.rule_save(rule=rule, actor="operator")
    rules_store.invalidate()
    rules_store.current()
    # A member of partition 3 recorded before the shrink: its heartbeats now go to partition 0 or 1.
    gone_members(redis_client, members_key("rooms", 3), 1)
    assert asyncio.run(reaper.reap_once()) == 1
    [leave] = entries(redis_client, stream_key("rooms", 3))
    assert (leave["type"], leave["channel"], leave["client"]) == ("leave", "chat:room1", "c0")
    assert redis_client.exists(members_key("rooms", 3)) == 0
