"""`make cluster CLUSTER_REDIS=sentinel|cluster` (issue 11, Deliver 4): the same topology as
test_cluster.py (2 Centrifugo nodes, 2 callback replicas, nginx) on a Sentinel-watched master or a
Redis Cluster. Healthy through nginx, and a publish from a real client is delivered on both nodes
(Centrifugo's engine on that Redis) and stored on the node that holds its stream: the master for
Sentinel, the master owning the stream's hash slot for Cluster. The faults (kill -9, failover,
resharding) are tests/cluster/test_redis_ha.py's."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import redis

from devcluster.redis_topology import ClusterRedis, SentinelRedis
from devcluster.topology import Cluster
from realtime.redis_url import parse
from tests.cluster.conftest import started_cluster
from tests.e2e import clients
from tests.support.gateway import SECRETS
from tests.support.procs import http_status

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module", params=["sentinel", "cluster"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with started_cluster(tmp_path_factory.mktemp(f"cluster-{request.param}"), redis=request.param) as topology:
        yield topology


def token(user: str) -> str:
    return jwt.encode(
        {"sub": user, "exp": int(time.time()) + 600}, SECRETS["CENTRIFUGO_TOKEN_HMAC_SECRET_KEY"], algorithm="HS256"
    )


def direct(port: int) -> Any:
    """A plain client of one server: no redirects followed, so it answers for that node only."""
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, decode_responses=True)


def test_issue11_item4_every_process_gets_the_topologys_url_and_is_healthy_through_nginx(cluster: Cluster) -> None:
    assert parse(cluster.redis_url).kind == cluster.redis_kind
    for i in range(2):
        assert cluster.replica_env(i)["REDIS_URL"] == cluster.node_env(i)["REDIS_URL"] == cluster.redis_url
    assert http_status(f"http://127.0.0.1:{cluster.ports.nginx}/health") == 200, "nginx → Centrifugo"
    # nginx's admin server → a callback replica's /health, which pings Redis through get_redis().
    for _ in range(2):  # round robin: both replicas
        assert http_status(f"http://127.0.0.1:{cluster.ports.admin}/health") == 200, "nginx → callbacks → Redis"
    assert any(line.startswith(f"Redis ({cluster.redis_kind}): ") for line in cluster.summary())


def test_issue11_item4_a_publish_through_nginx_is_delivered_on_both_nodes_and_stored_on_the_right_node(
    cluster: Cluster,
) -> None:
    channel, data = f"chat:{cluster.redis_kind}", {"stored": cluster.redis_kind}

    async def scenario() -> dict[str, str]:
        watchers = [await clients.connected(cluster.node_ws_url(i), token=token(f"w{i}")) for i in range(2)]
        publisher = await clients.connected(cluster.ws_url, token=token("publisher"))
        try:
            events = [(await clients.subscribed(w, channel))[1] for w in watchers]
            await publisher.publish(channel, data)
            received = [await asyncio.wait_for(e.publications.get(), 10) for e in events]
        finally:
            await asyncio.gather(publisher.disconnect(), *(w.disconnect() for w in watchers))
        assert [pub.data for pub in received] == [data, data]
        assert received[0].tags == received[1].tags
        return dict(received[0].tags)

    tags = asyncio.run(scenario())
    key, entry_id = tags["stream"], tags["stream_id"]
    topology = cluster.redis_topology
    if isinstance(topology, SentinelRedis):
        holder = topology.master_port()
        assert holder is not None
        others = [s.port for s in topology.servers if s.port != holder]
        # The replica has it too, once replication caught up (asynchronous with REDIS_ACK=local).
        for port in others:
            assert _wait_stored(port, key, entry_id) == data, f"replica :{port}"
    else:
        assert isinstance(topology, ClusterRedis)
        slot = direct(topology.ports[0]).execute_command("CLUSTER", "KEYSLOT", key)
        holder = next(n["port"] for n in topology.masters() if any(a <= slot <= b for a, b in n["slots"]))
        others = [n["port"] for n in topology.masters() if n["port"] != holder]
        for port in others:  # another master does not hold it: it redirects to the holder
            with pytest.raises(redis.ResponseError, match=rf"{slot} 127\.0\.0\.1:{holder}"):
                direct(port).xrange(key, entry_id, entry_id)
    assert _stored(holder, key, entry_id) == data


def _stored(port: int, key: str, entry_id: str) -> Any:
    entries = direct(port).xrange(key, entry_id, entry_id)
    assert len(entries) == 1, f":{port} has no entry {entry_id} in {key}"
    fields = entries[0][1]
    assert fields["channel"].startswith("chat:")
    return json.loads(fields["data"])


def _wait_stored(port: int, key: str, entry_id: str, timeout: float = 5) -> Any:
    deadline = time.monotonic() + timeout
    while not direct(port).xrange(key, entry_id, entry_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _stored(port, key, entry_id)
