"""GET /health names the Redis node that does not answer: the Sentinel master and the sentinels,
each Cluster master and the cluster's state; never a credential. Real topologies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from devcluster.redis_topology import ClusterRedis, SentinelRedis
from realtime.redis import reset_redis
from realtime.redis_url import build
from tests.support.procs import free_port, wait_for

pytestmark = pytest.mark.django_db


def health(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/health")
    return response.status_code, json.loads(response.content)["checks"]["redis"]


def use(settings: Any, url: str) -> None:
    settings.REDIS_URL = url
    reset_redis()


def test_issue11_health_sentinel_reports_the_master(client: Client, sentinel_url: str, sentinel_topology: Any) -> None:
    status, redis_check = health(client)
    assert status == 200
    assert redis_check["kind"] == "sentinel"
    assert redis_check["master"] == f"127.0.0.1:{sentinel_topology.master_port()}"
    assert redis_check["sentinels_down"] == {}


def test_issue11_health_names_a_sentinel_that_does_not_answer(
    client: Client, sentinel_topology: Any, settings: Any
) -> None:
    """One of four sentinels is gone: the master is still found (200), the missing one is named."""
    gone = free_port()
    sentinels = [("127.0.0.1", port) for port in sentinel_topology.sentinel_ports] + [("127.0.0.1", gone)]
    use(settings, build("sentinel", sentinels, master_name="gateway"))
    status, redis_check = health(client)
    assert status == 200
    assert list(redis_check["sentinels_down"]) == [f"127.0.0.1:{gone}"]
    assert "ConnectionError" in redis_check["sentinels_down"][f"127.0.0.1:{gone}"]


def test_issue11_health_unknown_master_name_is_unhealthy(client: Client, sentinel_topology: Any, settings: Any) -> None:
    sentinels = [("127.0.0.1", port) for port in sentinel_topology.sentinel_ports]
    use(settings, build("sentinel", sentinels, master_name="nosuch"))
    status, redis_check = health(client)
    assert status == 503
    assert redis_check["error"] == "the sentinels know no master named 'nosuch'"


@pytest.fixture
def lone_sentinel(tmp_path: Path, settings: Any) -> Iterator[SentinelRedis]:
    """A Sentinel set-up that will not fail over (down-after 60 s): its master can be killed."""
    topology = SentinelRedis(tmp_path, down_after_ms=60_000).start()
    assert isinstance(topology, SentinelRedis)
    # A password in the URL: the health body must not show it.
    use(settings, topology.url.replace("redis+sentinel://", "redis+sentinel://:hunter2-secret@"))
    yield topology
    reset_redis()
    topology.stop()


def test_issue11_health_names_the_sentinel_master_that_does_not_answer(
    client: Client, lone_sentinel: SentinelRedis, settings: Any
) -> None:
    settings.REDIS_URL = lone_sentinel.url  # the servers have no password set
    reset_redis()
    master = lone_sentinel.master_port()
    lone_sentinel.kill_master()
    status, redis_check = health(client)
    assert status == 503
    assert redis_check["error"].startswith(f"master 127.0.0.1:{master} does not answer (ConnectionError")


def test_issue11_health_never_shows_a_password(client: Client, lone_sentinel: SentinelRedis) -> None:
    response = client.get("/health")
    assert b"hunter2" not in response.content
    assert json.loads(response.content)["checks"]["redis"]["where"].startswith("master 'gateway' via sentinels")


def test_issue11_health_cluster_pings_every_master(client: Client, cluster_url: str) -> None:
    status, redis_check = health(client)
    assert status == 200
    assert (redis_check["kind"], redis_check["cluster_state"]) == ("cluster", "ok")
    assert len(redis_check["masters"]) == 3
    assert set(redis_check["masters"].values()) == {"ok"}


def test_issue11_health_names_the_cluster_master_that_died_then_recovers_after_failover(
    client: Client, tmp_path: Path, settings: Any
) -> None:
    topology = ClusterRedis(tmp_path).start()
    assert isinstance(topology, ClusterRedis)
    try:
        use(settings, topology.url)
        assert health(client)[0] == 200
        victim = topology.masters()[0]["port"]
        next(server for server in topology.servers if server.port == victim).kill()
        status, redis_check = health(client)
        assert status == 503
        assert redis_check["error"] == f"cluster master 127.0.0.1:{victim} does not answer"
        assert redis_check["masters"][f"127.0.0.1:{victim}"].startswith(("ConnectionError", "TimeoutError"))
        # Its replica takes over (cluster-node-timeout 2 s): health is ok again, same client.
        wait_for(lambda: health(client)[0] == 200, timeout=30, what="health after the failover", interval=0.5)
        assert f"127.0.0.1:{victim}" not in health(client)[1]["masters"]
    finally:
        reset_redis()
        topology.stop()
