"""Worker groups in stream_stats and the admin (issue 12 item 7): owner from the worker SDK's lease
key, lag, last acknowledged entry, dead letters; real Redis, and a Redis Cluster."""

from __future__ import annotations

import json
import time
from io import StringIO

import pytest
import redis
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from partitions.store import rules_store
from realtime.redis import get_redis
from streams import groups
from streams.catalog import StreamSpec
from streams.consumer import dead_letter_key
from streams.stats import GroupInfo, groups_table, streams_info

SPEC = StreamSpec("chat", 8)


def prepare(client: redis.Redis | redis.cluster.RedisCluster, key: str) -> list[str]:
    """Five entries; worker w1 of group "bots" owns the partition (lease "w1 7"), was handed three
    and acked the first; two dead letters of "bots" and one of "audit"; w1 and w2 are live; two
    channels are active for "bots"."""
    ids = [client.xadd(key, {"channel": "chat:a", "user": "u", "data": "{}", "ts": "1"}).decode() for _ in range(5)]
    client.xgroup_create(key, "bots", id="0")
    client.xreadgroup("bots", "w1", {key: ">"}, count=3)
    client.xack(key, "bots", ids[0])
    client.set(groups.lease_key(key, "bots"), "w1 7", px=6000)
    dead = dead_letter_key(key)
    for group in ("bots", "audit", "bots"):
        client.xadd(dead, {"channel": "chat:a", "data": "{}", "error": "ValueError: no", "group": group,
                           "consumer": "w1", "orig_id": ids[0], "deliveries": "5"})  # fmt: skip
    now = int(time.time() * 1000)
    client.zadd(groups.workers_key("bots"), {"w1": now + 6000, "w2": now + 6000, "gone": now - 1})
    # workers.lifecycle's state: two channels active for "bots" here
    client.hset(groups.active_channels_key(key, "bots"), mapping={"chat:a": "1|1-0", "chat:b": "2|2-0"})
    return ids


def bots(key: str) -> GroupInfo:
    [stream] = streams_info([SPEC])
    [partition] = [p for p in stream.partitions if p.key == key]
    assert partition.dead_letters == 3
    [group] = partition.groups
    return group


def test_issue12_item7_stats_show_owner_lag_last_acked_and_dead_letters(redis_url: str) -> None:
    key = SPEC.keys[3]
    ids = prepare(get_redis(), key)
    group = bots(key)
    assert (group.owner, group.owner_token, group.lag, group.pending) == ("w1", 7, 2, 2)
    assert 0 < group.lease_ttl_ms <= 6000  # type: ignore[operator]
    assert (group.last_acked_id, group.last_delivered_id, group.dead_letters) == (ids[0], ids[2], 2)
    assert group.active_channels == 2
    get_redis().xack(key, "bots", ids[1], ids[2])
    assert bots(key).last_acked_id == ids[2]  # nothing pending: everything delivered is acked
    get_redis().delete(groups.lease_key(key, "bots"))
    assert (bots(key).owner, bots(key).owner_token, bots(key).lease_ttl_ms) == ("", None, None)


def test_issue12_item7_last_acked_is_before_the_oldest_pending_entry_not_the_newest_ack(redis_url: str) -> None:
    key = SPEC.keys[0]
    ids = prepare(get_redis(), key)
    get_redis().xack(key, "bots", ids[2])  # acked out of order: ids[1] still pending
    assert bots(key).last_acked_id == ids[0]


def test_issue12_item7_too_many_dead_letters_to_count_per_group(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(groups, "DEAD_COUNT_LIMIT", 2)
    key = SPEC.keys[0]
    prepare(get_redis(), key)
    assert bots(key).dead_letters is None  # the partition's total (3) is still there


@pytest.mark.django_db  # stream_stats reads the partition rules
def test_issue12_item7_the_groups_view_of_stream_stats(redis_url: str, settings: object) -> None:
    key = SPEC.keys[5]
    ids = prepare(get_redis(), key)
    out = StringIO()
    call_command("stream_stats", "--groups", "--stream", "chat", stdout=out)
    header, row, live = out.getvalue().splitlines()
    assert header.split() == ["GROUP", "KEY", "OWNER", "TOKEN", "TTL-MS", "LAG", "PENDING", "LAST-ACKED",
                              "LAST-DELIVERED", "DEAD", "ACTIVE"]  # fmt: skip
    cells = row.split()
    assert cells[:4] + cells[5:] == ["bots", key, "w1", "7", "2", "2", ids[0], ids[2], "2", "2"]
    assert live == "group bots: 2 live worker(s): w1, w2"
    out = StringIO()
    call_command("stream_stats", "--json", "--stream", "chat", stdout=out)
    [group] = json.loads(out.getvalue())[0]["partitions"][5]["groups"]
    assert (group["owner"], group["last_acked_id"], group["dead_letters"]) == ("w1", ids[0], 2)


@pytest.mark.django_db
def test_issue12_item7_the_admin_shows_owner_last_ack_and_dead_letters(client: Client, redis_url: str) -> None:
    rules_store.invalidate()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    key = SPEC.keys[2]
    ids = prepare(get_redis(), key)
    page = client.get("/admin/streams/chat/").content.decode()
    assert f"<td>bots</td><td><code>{key}</code></td><td>w1 (token 7)</td>" in page
    # last acked, last delivered, dead letters, active channels
    assert f"<td>{ids[0]}</td><td>{ids[2]}</td><td>2</td><td>2</td>" in page
    assert "Live workers: w1, w2" in page
    assert "Dead letters (3 most recent)" in page
    assert "<p>3 in all, in" in page
    assert "ValueError: no" in page


def test_issue12_item7_stats_on_a_redis_cluster(cluster_url: str) -> None:
    cluster = get_redis()
    keys = [SPEC.keys[0], SPEC.keys[1], SPEC.keys[2]]
    assert len({cluster.get_node_from_key(k).port for k in keys}) > 1  # type: ignore[union-attr]
    prepared = {key: prepare(cluster, key) for key in keys}
    for key, ids in prepared.items():
        group = bots(key)
        assert (group.owner, group.owner_token, group.lag, group.last_acked_id, group.dead_letters) == (
            "w1", 7, 2, ids[0], 2,
        )  # fmt: skip
    assert "group bots: 2 live worker(s): w1, w2" in groups_table(
        streams_info([SPEC]), {"bots": groups.live_workers(cluster, "bots")}
    )


def test_groups_and_json_are_one_or_the_other(redis_url: str) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not allowed with argument"):
        call_command("stream_stats", "--groups", "--json")
