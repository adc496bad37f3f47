"""The process-wide redis-py client: one connection pool per process, created on first use, built
from REDIS_URL (realtime.redis_url) for one server, a Sentinel-monitored master or a Redis Cluster.

redis-py pools notice a fork (pid check) and reconnect, so a client created before gunicorn forks
is still safe; creating it lazily keeps import time free of I/O.

No silent retries, in any kind: XADD with an auto id is not idempotent, and a command re-sent after
an ambiguous failure (a timeout, a connection reset) whose first attempt landed would store the
message twice. A failure surfaces as a temporary error and the client retries knowingly. What
redis-py still does on its own is safe: in a Cluster it follows MOVED and ASK and waits out
TRYAGAIN (the node did not run the command), and after a connection error it re-reads the slot map
so the NEXT command finds the new owner; with Sentinel each new connection asks the sentinels for
the current master, and a demoted master's READONLY (not run either) drops the connection.
"""

from __future__ import annotations

import threading
from typing import Any, TypeAlias

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ClusterError, RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

from realtime.redis_url import RedisLocation, parse

# What get_redis() returns: the command methods the gateway uses exist on both; the few that
# differ (pipelines per node, WAIT on one node's connection) branch on isinstance.
Client: TypeAlias = redis.Redis | RedisCluster

# What a failed Redis call may raise. RedisCluster adds RedisClusterException, which is NOT a
# RedisError: no node answers to read the slot map from, a slot without a master.
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, RedisClusterException)
# The transient ones, which a long-running loop waits out: a node away, a timeout, a Cluster
# failing over (CLUSTERDOWN, MASTERDOWN) or unreachable as a whole.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError, redis.TimeoutError, ClusterError, RedisClusterException
)  # fmt: skip

_lock = threading.Lock()
_client: Client | None = None
_parsed: RedisLocation | None = None


def location() -> RedisLocation:
    """Where REDIS_URL points. settings.REDIS_LOCATION is parsed at start-up; tests that point
    settings.REDIS_URL elsewhere get that URL parsed (once per URL)."""
    global _parsed
    configured: RedisLocation = settings.REDIS_LOCATION
    url: str = settings.REDIS_URL
    if configured.url == url:
        return configured
    if _parsed is None or _parsed.url != url:
        _parsed = parse(url)
    return _parsed


def no_retry() -> Retry:
    """A Retry that never re-sends a command (see the module docstring)."""
    return Retry(NoBackoff(), 0)


def connect(
    where: RedisLocation,
    *,
    socket_timeout: float,
    connect_timeout: float | None = None,
    **options: Any,
) -> Client:
    """A new redis-py client for `where`: redis.Redis for one server or a Sentinel master
    (discovered through the sentinels on each new connection), RedisCluster for a Cluster.
    `options` go to every connection (decode_responses, max_connections, health_check_interval)."""
    connect_timeout = socket_timeout if connect_timeout is None else connect_timeout
    auth: dict[str, Any] = {"username": where.username or None, "password": where.password or None}
    timeouts: dict[str, Any] = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout}
    if where.kind == "cluster":
        seeds = [ClusterNode(host, port) for host, port in where.addresses]  # type: ignore[no-untyped-call]
        return RedisCluster(
            startup_nodes=seeds,
            ssl=where.tls,
            retry=no_retry(),  # and redis-py gives the per-node clients no retries of their own
            **auth,
            **timeouts,
            **options,
        )
    if where.kind == "sentinel":
        sentinels = Sentinel(  # type: ignore[no-untyped-call]
            list(where.addresses),
            sentinel_kwargs={
                "username": where.sentinel_username or None,
                "password": where.sentinel_password or None,
                "ssl": where.sentinel_tls,
                "retry": no_retry(),
                **timeouts,
            },
        )
        master: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call]
            where.master_name, db=where.db, ssl=where.tls, retry=no_retry(), **auth, **timeouts, **options
        )
        return master
    if where.unix_path:
        return redis.Redis(
            unix_socket_path=where.unix_path, db=where.db, retry=no_retry(), **auth, **timeouts, **options
        )
    ((host, port),) = where.addresses
    return redis.Redis(
        host=host, port=port, db=where.db, ssl=where.tls, retry=no_retry(), **auth, **timeouts, **options
    )


def get_redis() -> Client:
    global _client
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                _client = connect(
                    location(),
                    socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
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


def node_for_key(client: Client, key: str, asking: tuple[str, int] | None = None) -> tuple[redis.Redis, str]:
    """A plain client on the server that holds `key` and its host:port: what a command that must
    share a connection with the write (WAIT) is sent on. In a Cluster the slot's master from the
    client's slot map (`asking`: the node an ASK redirect named instead); otherwise the client
    itself (a Sentinel client's connections go to the current master)."""
    if not isinstance(client, RedisCluster):
        return client, location().where
    node = client.get_node(host=asking[0], port=asking[1]) if asking else client.get_node_from_key(key)  # type: ignore[no-untyped-call]
    if node is None and asking:
        node = ClusterNode(*asking)  # type: ignore[no-untyped-call]
    return client.get_redis_connection(node), node.name
