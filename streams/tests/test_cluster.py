"""Everything on the redis-py side that reads or writes several stream keys works on a Redis
Cluster, where the partitions of one stream live in different slots on different masters: a
multi-key command over them would be CROSSSLOT. Real Cluster processes (conftest)."""

from __future__ import annotations

import json
import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command

from partitions.rules import StreamTarget
from partitions.store import rules_store
from realtime.redis import get_redis
from streams.catalog import StreamSpec
from streams.consumer import GroupConsumer, dead_letter_key
from streams.process import blocking_redis
from streams.reader import Message, channel_history
from streams.stats import recent_messages, streams_info
from streams.tail import Tail, start_positions
from streams.writer import rate_limit_hit, stream_append

SPEC = StreamSpec("jobs", 8)


def _nodes(keys: list[str]) -> set[int]:
    return {get_redis().get_node_from_key(key).port for key in keys}  # type: ignore[union-attr]


def fill(n: int, spec: StreamSpec = SPEC) -> list[tuple[str, str]]:
    written = []
    for i in range(n):
        target = StreamTarget(spec.name, i % spec.partitions, None, True, None)
        appended = stream_append(target=target, channel=f"jobs:{i}", user="u", client="c", data=json.dumps(i).encode())
        written.append((appended.key, appended.entry_id))
    return written


def test_issue11_item1_the_test_stream_spreads_over_every_master(cluster_url: str) -> None:
    assert len(_nodes(SPEC.keys)) == 3


def test_issue11_item1_consumer_group_reads_every_partition_across_slots(cluster_url: str) -> None:
    written = fill(40)
    seen: list[tuple[str, str]] = []

    def record(message: Message) -> None:
        seen.append((message.stream_key, message.id))

    consumer = GroupConsumer(
        client=blocking_redis(block_ms=200), group="g", consumer="c1", keys=lambda: SPEC.keys, handler=record,
        batch=7, block_ms=200, max_messages=40,
    )  # fmt: skip
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    thread.join(30)
    assert sorted(seen) == sorted(written)
    assert sum(int(get_redis().xpending(key, "g")["pending"]) for key in SPEC.keys) == 0


def test_issue11_item1_an_idle_consumer_waits_for_new_entries_and_gets_them_soon(cluster_url: str) -> None:
    """Nothing stored: the read waits (block_ms) instead of spinning, and an entry written while it
    waits is handled within a short delay."""
    seen: list[float] = []
    consumer = GroupConsumer(
        client=blocking_redis(block_ms=2000), group="g", consumer="c1", keys=lambda: SPEC.keys,
        handler=lambda m: seen.append(time.monotonic()), block_ms=2000, max_messages=1,
    )  # fmt: skip
    consumer.refresh_keys()
    started = time.monotonic()
    assert consumer.run_once() == 0
    assert time.monotonic() - started >= 1.5  # it waited (about block_ms)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    time.sleep(0.3)
    written_at = time.monotonic()
    fill(1)
    thread.join(10)
    assert seen
    assert seen[0] - written_at < 1.0  # generous: the poll interval is 50 ms


def test_issue11_item1_dead_letters_move_in_one_transaction_on_a_cluster(cluster_url: str) -> None:
    [(key, entry_id)] = fill(1)

    def fail(message: Message) -> None:
        raise RuntimeError("always")

    consumer = GroupConsumer(
        client=blocking_redis(block_ms=50), group="g", consumer="c1", keys=lambda: SPEC.keys, handler=fail,
        block_ms=50, claim_idle_ms=1, max_deliveries=2,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    consumer.refresh_keys()
    while consumer.counts.dead == 0 and time.monotonic() < deadline:
        consumer.run_once()
        time.sleep(0.01)
    [(_, fields)] = get_redis().xrange(dead_letter_key(key))
    assert fields[b"orig_id"].decode() == entry_id
    assert int(get_redis().xpending(key, "g")["pending"]) == 0


def test_issue11_item1_tail_follows_every_partition_across_slots(cluster_url: str) -> None:
    client = blocking_redis(block_ms=200)
    tail = Tail(client=client, positions=start_positions(client, SPEC.keys, None), block_ms=200)
    written = fill(16)
    got: list[tuple[str, str]] = []
    for message in tail.follow():
        got.append((message.stream_key, message.id))
        if len(got) == len(written):
            break
    assert sorted(got) == sorted(written)


def test_issue11_item1_stats_recent_and_history_read_every_partition(cluster_url: str) -> None:
    written = fill(24)
    client = get_redis()
    client.xgroup_create(SPEC.keys[1], "billing", id="0")
    [stream] = streams_info([SPEC])
    assert stream.length == 24
    assert [g.name for g in stream.partitions[1].groups] == ["billing"]
    assert len(recent_messages(SPEC.keys, count=5)) == 5
    page = channel_history("jobs:3", keys=SPEC.keys)
    assert [m.id for m in page.messages] == [entry_id for key, entry_id in written if key == SPEC.keys[3]][:1]


@pytest.mark.django_db
def test_issue11_item1_stream_stats_and_tail_commands_run_on_a_cluster(cluster_url: str) -> None:
    rules_store.invalidate()
    fill(8, StreamSpec("chat", 8))
    out = StringIO()
    call_command("stream_stats", "--json", "--stream", "chat", stdout=out)
    [chat] = json.loads(out.getvalue())
    assert sum(p["length"] for p in chat["partitions"]) == 8
    out, err = StringIO(), StringIO()
    call_command("stream_tail", "--from-start", "--count", "8", stdout=out, stderr=err)
    assert len(out.getvalue().splitlines()) == 8


def test_issue11_item1_rate_limit_counts_on_a_cluster(cluster_url: str) -> None:
    hits = [rate_limit_hit(rule_id=1, who=f"u{i % 3}", limit=2, window=60) for i in range(9)]
    assert hits == [False] * 6 + [True] * 3


@pytest.mark.django_db
def test_issue11_item1_partition_shrink_check_reads_lengths_across_slots(cluster_url: str) -> None:
    from django.core.exceptions import ValidationError

    from partitions import models
    from partitions.services import rule_save

    rule = models.PartitionRule.objects.create(pattern="jobs:*", stream="jobs", partitions=8)
    fill(16)
    rule.partitions = 2
    with pytest.raises(ValidationError, match="has 12 entries in partitions 2-7"):
        rule_save(rule=rule, actor="t")
