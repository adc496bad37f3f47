"""REDIS_ACK=replicated on the redis-py path (server API, commands): the write and a WAIT on the
same connection to the key's master; fewer replicas than REDIS_ACK_REPLICAS is StreamUnavailable
(1503 for the server API), never an ok. Real Sentinel and Cluster processes (conftest)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from django.test import Client
from redis.crc import key_slot

from partitions.rules import StreamTarget
from realtime.redis import get_redis
from streams.idempotency import PublicationKey
from streams.writer import StreamUnavailable, stream_append, stream_key
from tests.support.procs import free_port


@pytest.fixture
def replicated(settings: Any) -> Any:
    settings.REDIS_ACK = "replicated"
    settings.REDIS_ACK_REPLICAS = 1
    return settings


def _append(stream: str = "chat", partition: int = 0, **kwargs: Any) -> Any:
    target = StreamTarget(stream, partition, None, True, None, max_age_seconds=kwargs.pop("max_age", None))
    return stream_append(target=target, channel="chat:a", user="u", client="c", data=b'{"n": 1}', **kwargs)


def _replica_of_key(client: Any, key: str) -> redis.Redis:
    """A plain client on the replica of the master that holds `key`."""
    from realtime.redis import node_for_key

    info = node_for_key(client, key)[0].info("replication")
    replica = redis.Redis(host=info["slave0"]["ip"], port=info["slave0"]["port"], single_connection_client=True)
    if info.get("slave0") and "cluster" in type(client).__name__.lower():
        replica.execute_command("READONLY")  # a cluster replica serves reads of its master's slots
    return replica


@pytest.mark.parametrize("url_fixture", ["sentinel_url", "cluster_url"])
def test_issue11_item3_a_replicated_append_is_on_a_replica_when_it_returns(
    url_fixture: str, request: pytest.FixtureRequest, replicated: Any
) -> None:
    request.getfixturevalue(url_fixture)
    for partition in range(8):  # several slots, so several cluster masters
        appended = _append(partition=partition)
        replica = _replica_of_key(get_redis(), appended.key)
        try:
            # WAIT said so: the replica has it already, without waiting here.
            assert [entry_id.decode() for entry_id, _ in replica.xrange(appended.key)] == [appended.entry_id]
        finally:
            replica.close()
    # The scripted write (idempotency key, retention by age) takes the same path.
    keyed = _append(
        idempotency=PublicationKey.of(user="u", client="c", channel="chat:a", key="k1", data=b'{"n": 1}', binary=False),
        max_age=60,
    )
    assert not keyed.duplicate


@pytest.mark.parametrize("url_fixture", ["redis_url", "sentinel_url", "cluster_url"])
def test_issue11_item3_fewer_replicas_than_required_is_stream_unavailable(
    url_fixture: str, request: pytest.FixtureRequest, replicated: Any
) -> None:
    """One replica per master here (none for the single server): asking for two can never be met."""
    request.getfixturevalue(url_fixture)
    replicated.REDIS_ACK_REPLICAS = 2 if url_fixture != "redis_url" else 1
    with pytest.raises(StreamUnavailable, match=r"[01] of [12] replicas"):
        _append()


def test_issue11_item3_local_mode_sends_no_wait(sentinel_url: str, settings: Any) -> None:
    settings.REDIS_ACK, settings.REDIS_ACK_REPLICAS = "local", 2
    assert _append().entry_id  # two replicas would be impossible; local mode never asks


@pytest.mark.django_db
def test_issue11_item3_server_api_answers_a_temporary_error_when_replicas_lag(
    sentinel_url: str, replicated: Any, client: Client
) -> None:
    replicated.GATEWAY_API_KEY = "k"
    replicated.CENTRIFUGO_API_URL = f"http://127.0.0.1:{free_port()}"
    replicated.REDIS_ACK_REPLICAS = 2
    response = client.post(
        "/api/publish", data=json.dumps({"channel": "chat:x", "data": 1}), content_type="application/json",
        headers={"Authorization": "Api-Key k"},
    )  # fmt: skip
    assert response.status_code == 503
    assert json.loads(response.content)["error"]["code"] == 1503
    assert json.loads(response.content)["error"]["temporary"] is True


def test_issue11_item3_a_replicated_append_follows_moved_after_a_reshard(
    cluster_url: str, cluster_topology: Any, replicated: Any
) -> None:
    client = get_redis()
    source, target = cluster_topology.masters()[:2]
    first_slot = source["slots"][0][0]  # redis-cli --cluster reshard moves a master's lowest slots first
    stream = next(f"m{i}" for i in range(200_000) if key_slot(f"m{i}:0".encode()) == first_slot)
    assert _append(stream).entry_id
    cluster_topology.reshard(source["port"], target["port"], 1)
    # The client's slot map still names the old owner: MOVED (not run there), then the new one.
    appended = _append(stream)
    assert client.get_node_from_key(appended.key).port == target["port"]
    assert client.xlen(stream_key(stream, 0)) == 2


def test_issue11_item1_a_scripted_append_works_on_a_cluster(cluster_url: str) -> None:
    """Retention by age without an idempotency key: the script gets one key (an empty second key
    would be slot 0: CROSSSLOT)."""
    appended = _append("aged", 3, max_age=60)
    assert get_redis().xlen(appended.key) == 1
