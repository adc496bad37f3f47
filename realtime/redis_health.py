"""Which Redis node answers, for /health: the server; the Sentinel master and each sentinel; each
Cluster master and the cluster's state. Names nodes by host:port only (no credentials)."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from redis.cluster import RedisCluster

from realtime.redis import REDIS_ERRORS, get_redis, location, no_retry
from realtime.redis_url import RedisLocation


class RedisDown(Exception):
    """A node the gateway needs does not answer; `detail` says which (for the health body)."""

    def __init__(self, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.detail = detail


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def check_redis() -> dict[str, Any]:
    """Details when every node the gateway needs answers; RedisDown naming the ones that do not."""
    where = location()
    if where.kind == "sentinel":
        return _check_sentinel(where)
    client = get_redis()
    if isinstance(client, RedisCluster):
        return _check_cluster(client)
    client.ping()
    return {"server": where.where}


def _check_sentinel(where: RedisLocation) -> dict[str, Any]:
    """Asks every sentinel where the master is (a sentinel that does not answer is named, and is
    not fatal while another one answers), then PINGs the master through the gateway's client."""
    master: str | None = None
    sentinels_down: dict[str, str] = {}
    for host, port in where.addresses:
        sentinel = redis.Redis(
            host=host, port=port, username=where.sentinel_username or None,
            password=where.sentinel_password or None, ssl=where.sentinel_tls, retry=no_retry(),
            socket_timeout=settings.REDIS_SOCKET_TIMEOUT, socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
        )  # fmt: skip
        try:
            address = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", where.master_name)  # type: ignore[no-untyped-call]
        except REDIS_ERRORS as exc:
            sentinels_down[f"{host}:{port}"] = _failure(exc)
            continue
        finally:
            sentinel.close()
        if address and master is None:
            master = ":".join(part.decode() if isinstance(part, bytes) else str(part) for part in address)
    detail: dict[str, Any] = {"master": master, "sentinels_down": sentinels_down}
    if len(sentinels_down) == len(where.addresses):
        raise RedisDown(f"no sentinel answers ({', '.join(sentinels_down)})", detail)
    if master is None:
        raise RedisDown(f"the sentinels know no master named {where.master_name!r}", detail)
    try:
        get_redis().ping()
    except REDIS_ERRORS as exc:
        raise RedisDown(f"master {master} does not answer ({_failure(exc)})", detail) from exc
    return detail


def _check_cluster(client: RedisCluster) -> dict[str, Any]:
    """PINGs every master of the client's slot map and reads cluster_state from one that answers:
    a master down, or a state other than ok (slots without a master), is unhealthy. Through the
    cluster client, so a node that fails makes it re-read the slot map: after a failover the next
    check sees the promoted replica instead of the dead master."""
    masters: dict[str, str] = {}
    state = "unknown"
    for node in client.get_primaries():  # type: ignore[no-untyped-call]
        try:
            client.ping(target_nodes=node)
            if state == "unknown":
                info: Any = client.cluster_info(target_nodes=node)
                state = str(info.get("cluster_state", "?"))
            masters[node.name] = "ok"
        except REDIS_ERRORS as exc:
            masters[node.name] = _failure(exc)
    detail: dict[str, Any] = {"masters": masters, "cluster_state": state}
    down = [name for name, status in masters.items() if status != "ok"]
    if down:
        raise RedisDown(f"cluster master {', '.join(down)} does not answer", detail)
    if state != "ok":
        raise RedisDown(f"cluster_state is {state}", detail)
    return detail
