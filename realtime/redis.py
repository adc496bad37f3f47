"""The process-wide Redis client: one connection pool per process, created on first use.

redis-py pools notice a fork (pid check) and reconnect, so a client created before gunicorn forks
is still safe; creating it lazily keeps import time free of I/O.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

_lock = threading.Lock()
_client: redis.Redis | None = None


def get_redis() -> redis.Redis:
    global _client
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                _client = redis.Redis.from_url(
                    settings.REDIS_URL,
                    socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                    socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
                    # No silent retries: XADD with an auto id is not idempotent, and a retried
                    # write whose first attempt landed would store the message twice. A failure
                    # surfaces as a temporary error and the client retries knowingly.
                    retry=Retry(NoBackoff(), 0),
                    health_check_interval=30,
                    max_connections=64,
                )
            client = _client
    return client


def reset_redis() -> None:
    """Forget the client (tests point REDIS_URL elsewhere; this makes the next call reconnect)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
