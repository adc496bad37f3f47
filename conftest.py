"""Fixtures every test may use: a real redis-server on a free loopback port for the whole run."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
import redis
import redis.cluster

from tests.support.procs import Process, start_redis


def pytest_configure(config: pytest.Config) -> None:
    """A run ended by SIGTERM (`timeout` in scripts/test-latest.sh, a CI runner's cancel) still tears
    its fixtures down: as a KeyboardInterrupt, pytest stops the run and the session fixtures stop the
    Redis servers, topologies and gateways they started. Those live in their own sessions, so the
    default SIGTERM (the interpreter dies at once) left them running."""
    signal.signal(signal.SIGTERM, _interrupted)


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, int]]:
    proc, port = start_redis(Path(tmp_path_factory.mktemp("redis")))
    yield proc, port
    proc.stop()


@pytest.fixture
def redis_url(redis_server: tuple[Process, int], settings: object) -> Iterator[str]:
    """Points the app's Redis client at the test server, and empties it before each test."""
    from realtime.redis import reset_redis

    url = f"redis://127.0.0.1:{redis_server[1]}/0"
    settings.REDIS_URL = url  # type: ignore[attr-defined]
    reset_redis()
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    yield url
    reset_redis()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


# Redis Sentinel and Redis Cluster as local processes (devcluster.redis_topology), one of each per
# test run: they take ~2 s to start. A test that inflicts a fault (kill, failover) starts its own.
@pytest.fixture(scope="session")
def sentinel_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from devcluster.redis_topology import SentinelRedis

    topology = SentinelRedis(Path(tmp_path_factory.mktemp("sentinel"))).start()
    yield topology
    topology.stop()


@pytest.fixture(scope="session")
def cluster_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from devcluster.redis_topology import ClusterRedis

    topology = ClusterRedis(Path(tmp_path_factory.mktemp("cluster"))).start()
    yield topology
    topology.stop()


def _use_topology(url: str, settings: object) -> Iterator[str]:
    from realtime.redis import connect, reset_redis
    from realtime.redis_url import parse

    settings.REDIS_URL = url  # type: ignore[attr-defined]
    reset_redis()
    client = connect(parse(url), socket_timeout=5)
    if isinstance(client, redis.cluster.RedisCluster):
        client.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
    else:
        client.flushdb()
    client.close()
    yield url
    reset_redis()


@pytest.fixture
def sentinel_url(sentinel_topology: object, settings: object) -> Iterator[str]:
    """Points the app's Redis client at the test run's Sentinel master, emptied."""
    yield from _use_topology(sentinel_topology.url, settings)  # type: ignore[attr-defined]


@pytest.fixture
def cluster_url(cluster_topology: object, settings: object) -> Iterator[str]:
    """Points the app's Redis client at the test run's Redis Cluster, emptied."""
    yield from _use_topology(cluster_topology.url, settings)  # type: ignore[attr-defined]
