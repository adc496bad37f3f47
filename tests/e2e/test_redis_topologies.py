"""The whole gateway (gunicorn with the production settings, Centrifugo with its Redis engine)
on a Redis Sentinel and on a Redis Cluster, given only REDIS_URL: /health names the topology, and
a server publication is stored there (redis-py's path) and broadcast by Centrifugo (200)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from realtime.redis import connect
from realtime.redis_url import parse
from tests.e2e.test_message_log import server_publish
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sentinel_topology", "cluster_topology"])
def topology_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Gateway, Any]]:
    topology = request.getfixturevalue(request.param)
    gateway = Gateway(var_dir=tmp_path / "gw", extra_env={"REDIS_URL": topology.url, "CENTRIFUGO_ENGINE": "redis"})
    gateway.start()
    try:
        yield gateway, topology
    finally:
        gateway.stop()


def test_issue11_item1_the_gateway_runs_on_sentinel_and_cluster(topology_gateway: tuple[Gateway, Any]) -> None:
    gateway, topology = topology_gateway
    with urllib.request.urlopen(f"{gateway.callback_url}/health", timeout=5) as response:
        redis_check = json.loads(response.read())["checks"]["redis"]
    assert redis_check["kind"] == topology.kind
    status, body = server_publish(gateway, {"channel": "chat:topology", "data": {"n": 1}}, "topology-1")
    assert status == 200, body
    stream_key, entry_id = body["result"]["stream"], body["result"]["stream_id"]  # type: ignore[index]
    client = connect(parse(topology.url), socket_timeout=5)
    try:
        assert [e[0].decode() for e in client.xrange(stream_key)] == [entry_id]
    finally:
        client.close()
