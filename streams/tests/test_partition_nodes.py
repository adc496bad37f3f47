"""Issue 11, Deliver 5: stream_stats and the admin show which Redis node holds each partition —
a Cluster's slot and its master (from the slot map), Sentinel's current master, the one server."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from redis.crc import key_slot

from partitions.store import rules_store
from streams.catalog import StreamSpec
from streams.stats import stats_table, streams_info

pytestmark = pytest.mark.django_db

CHAT = StreamSpec("chat", 8)  # the default rules' chat stream


def _owners(cluster_topology: Any) -> dict[int, int]:
    """slot -> port of its master, as the cluster itself says (CLUSTER NODES)."""
    return {
        slot: master["port"]
        for master in cluster_topology.masters()
        for start, end in master["slots"]
        for slot in range(start, end + 1)
    }


def test_issue11_item5_stats_name_each_partitions_slot_and_master_on_a_cluster(
    cluster_url: str, cluster_topology: Any
) -> None:
    [stream] = streams_info([CHAT])
    owners = _owners(cluster_topology)
    for partition in stream.partitions:
        assert partition.slot == key_slot(partition.key.encode())
        assert partition.node == f"127.0.0.1:{owners[partition.slot]}"
    assert len({p.node for p in stream.partitions}) == 3  # 8 partitions over the 3 masters
    out = StringIO()
    rules_store.invalidate()
    call_command("stream_stats", "--json", "--stream", "chat", stdout=out)
    [chat] = json.loads(out.getvalue())
    assert [(p["node"], p["slot"]) for p in chat["partitions"]] == [(p.node, p.slot) for p in stream.partitions]
    table = stats_table([stream]).splitlines()
    assert table[1].split()[:3] == [CHAT.keys[0], stream.partitions[0].node, str(stream.partitions[0].slot)]


def test_issue11_item5_stats_name_the_current_sentinel_master(sentinel_url: str, sentinel_topology: Any) -> None:
    [stream] = streams_info([CHAT])
    assert {(p.node, p.slot) for p in stream.partitions} == {(f"127.0.0.1:{sentinel_topology.master_port()}", None)}


def test_issue11_item5_stats_name_the_one_server(redis_url: str) -> None:
    [stream] = streams_info([CHAT])
    assert {(p.node, p.slot) for p in stream.partitions} == {(redis_url.removeprefix("redis://")[: -len("/0")], None)}


def test_issue11_item5_the_admin_stream_page_shows_node_and_slot(
    cluster_url: str, cluster_topology: Any, client: Client
) -> None:
    rules_store.invalidate()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    page = client.get("/admin/streams/chat/").content.decode()
    [stream] = streams_info([CHAT])
    for p in stream.partitions:
        assert f"<tr><td><code>{p.key}</code></td><td>{p.node}</td><td>{p.slot}</td>" in page
