from __future__ import annotations

import json
from io import StringIO

import pytest
import redis
from django.core.management import call_command

from partitions.patterns import Pattern
from partitions.rules import Defaults, PartitionKey, PartitionRule, build
from partitions.store import rules_store
from streams.catalog import StreamSpec, stream_specs_of
from streams.stats import recent_messages, stats_table, streams_info

SPEC = StreamSpec("orders", 2)


def rule(
    rule_id: int, stream: str, partitions: int, *, store: bool = True, max_length: int | None = None,
    max_age: int | None = None,
) -> PartitionRule:  # fmt: skip
    return PartitionRule(
        rule_id,
        Pattern.parse(f"p{rule_id}:*"),
        100,
        stream,
        partitions,
        PartitionKey.CHANNEL,
        max_length,
        store,
        max_age,
    )


def test_the_catalog_lists_each_stream_once_with_its_largest_partition_count() -> None:
    rules = [rule(1, "chat", 8), rule(2, "chat", 16), rule(3, "quiet", 4, store=False)]
    ruleset = build(1, [], rules, Defaults(stream="default", partitions=3))
    specs = stream_specs_of(ruleset)
    # "quiet" stores nothing; the default stream is trimmed as Defaults say (100,000 entries).
    assert specs == [StreamSpec("chat", 16), StreamSpec("default", 3, max_length=100_000)]
    assert specs[1].keys == ["rtgw:stream:{default:0}", "rtgw:stream:{default:1}", "rtgw:stream:{default:2}"]


def test_issue12_the_catalog_gives_each_stream_the_loosest_trim_of_the_rules_writing_it() -> None:
    """Join/leave entries of a stream are trimmed by it (streams.joinleave): never more than a rule would."""
    rules = [rule(1, "a", 2, max_length=10, max_age=60), rule(2, "a", 2, max_length=50, max_age=30),
             rule(3, "b", 1, max_length=10), rule(4, "b", 1, max_age=5), rule(5, "c", 1, max_length=7)]  # fmt: skip
    specs = {spec.name: spec for spec in stream_specs_of(build(1, [], rules, Defaults(max_length=None)))}
    assert (specs["a"].max_length, specs["a"].max_age_seconds) == (50, 60)
    assert (specs["b"].max_length, specs["b"].max_age_seconds) == (None, None)  # rule 4: no cap on length
    assert (specs["c"].max_length, specs["c"].max_age_seconds) == (7, None)
    assert (specs["default"].max_length, specs["default"].max_age_seconds) == (None, None)


@pytest.fixture
def prepared(redis_client: redis.Redis) -> list[str]:
    """Partition 0: three entries; group "billing" read two of them (unacked), group "audit" is
    caught up. Partition 1: never written."""
    key = SPEC.keys[0]
    ids = [redis_client.xadd(key, {"channel": f"orders:{i}", "user": "u", "data": "{}", "ts": "1"}) for i in range(3)]
    redis_client.xgroup_create(key, "billing", id="0")
    redis_client.xgroup_create(key, "audit", id="$")
    redis_client.xreadgroup("billing", "worker-1", {key: ">"}, count=2)
    return ids


def test_stats_report_lengths_ids_pending_and_lag(prepared: list[str]) -> None:
    [stream] = streams_info([SPEC])
    written, empty = stream.partitions
    assert (written.key, written.length, written.first_id, written.last_id) == (
        SPEC.keys[0],
        3,
        prepared[0],
        prepared[2],
    )
    groups = {g.name: g for g in written.groups}
    billing, audit = groups["billing"], groups["audit"]
    assert (billing.consumers, billing.pending, billing.lag, billing.last_delivered_id) == (1, 2, 1, prepared[1])
    assert [(c.name, c.pending) for c in billing.members] == [("worker-1", 2)]
    assert (audit.consumers, audit.pending, audit.lag, audit.last_delivered_id) == (0, 0, 0, prepared[2])
    assert (empty.key, empty.length, empty.first_id, empty.last_id, empty.groups) == (SPEC.keys[1], 0, None, None, [])
    assert (stream.length, stream.group_names) == (3, ["audit", "billing"])


def test_the_table_has_a_row_per_partition_and_group(prepared: list[str], redis_url: str) -> None:
    header, *rows = stats_table(streams_info([SPEC])).splitlines()
    assert header.split() == [
        "KEY",
        "NODE",
        "SLOT",
        "LENGTH",
        "FIRST",
        "LAST",
        "GROUP",
        "CONSUMERS",
        "PENDING",
        "LAG",
        "LAST-DELIVERED",
    ]
    server = redis_url.removeprefix("redis://").removesuffix("/0")
    cells = [row.split() for row in rows]
    assert cells == [
        [SPEC.keys[0], server, "-", "3", prepared[0], prepared[2], "audit", "0", "0", "0", prepared[2]],
        ["billing", "1", "2", "1", prepared[1]],
        [SPEC.keys[1], server, "-", "0", "-", "-", "-"],
    ]


def test_recent_messages_are_the_newest_over_all_partitions(redis_client: redis.Redis) -> None:
    # Explicit ids: entries of different partitions in one millisecond would have no order.
    ids = [
        redis_client.xadd(SPEC.keys[i % 2], {"channel": f"orders:{i}", "data": "{}", "ts": "1"}, id=f"{1000 + i}-0")
        for i in range(5)
    ]
    recent = recent_messages(SPEC.keys, count=3)
    assert [(m.stream_key, m.id, m.channel) for m in recent] == [
        (SPEC.keys[0], ids[4], "orders:4"),
        (SPEC.keys[1], ids[3], "orders:3"),
        (SPEC.keys[0], ids[2], "orders:2"),
    ]


@pytest.mark.django_db
def test_the_command_prints_json_for_the_streams_the_rules_write(redis_client: redis.Redis) -> None:
    rules_store.invalidate()
    entry_id = redis_client.xadd("rtgw:stream:{chat:3}", {"channel": "chat:x", "data": "{}", "ts": "1"})
    redis_client.xgroup_create("rtgw:stream:{chat:3}", "g", id="0")
    out = StringIO()
    call_command("stream_stats", "--json", "--stream", "chat", stdout=out)
    [chat] = json.loads(out.getvalue())
    assert (chat["name"], len(chat["partitions"])) == ("chat", 8)
    partition = chat["partitions"][3]
    assert (partition["key"], partition["length"], partition["last_id"]) == ("rtgw:stream:{chat:3}", 1, entry_id)
    assert partition["groups"] == [
        {"name": "g", "consumers": 0, "pending": 0, "lag": 1, "last_delivered_id": "0-0", "members": [],
         "owner": "", "owner_token": None, "lease_ttl_ms": None, "last_acked_id": None, "dead_letters": 0, "active_channels": 0}
    ]  # fmt: skip
