"""Fixtures every test may use: a real redis-server on a free loopback port for the whole run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.procs import Process, start_redis


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
