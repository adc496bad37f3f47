"""Django's cache (and the cached sessions) on the Redis that REDIS_URL names, whatever its kind.

django-redis builds its client from a URL it parses itself and knows neither Centrifugo's
`redis+sentinel://` form nor Redis Cluster. Its public extension point is the connection factory
(the `CONNECTION_FACTORY` option): this one returns the client realtime.redis builds from the same
URL — redis.Redis, a Sentinel master's client, or RedisCluster — with the cache's own timeouts.
Sessions and cache entries are single-key commands, which a Cluster routes by slot.
"""

from __future__ import annotations

import threading
from typing import Any

from django_redis.pool import ConnectionFactory  # type: ignore[import-untyped]

from realtime.redis import Client, connect
from realtime.redis_url import parse


class LocationConnectionFactory(ConnectionFactory):
    # One client per URL and process, like django-redis's pools (Django makes a cache client per
    # request; each asks the factory again).
    _clients: dict[str, Client] = {}
    _lock = threading.Lock()

    def connect(self, url: str) -> Any:
        client = self._clients.get(url)
        if client is None:
            with self._lock:
                client = self._clients.get(url)
                if client is None:
                    params = self.make_connection_params(url)
                    client = self._clients[url] = connect(
                        parse(url),
                        socket_timeout=params.get("socket_timeout") or 5.0,
                        connect_timeout=params.get("socket_connect_timeout"),
                    )
        return client

    def disconnect(self, connection: Any) -> None:
        with self._lock:
            for url, client in list(self._clients.items()):
                if client is connection:
                    del self._clients[url]
        connection.close()
