"""The stream writer: one XADD per accepted publication, before the publish is acknowledged.

Key layout: `<prefix>:stream:{<stream>:<partition>}`. The braces are a Redis Cluster hash tag, so
each partition lives in one slot and different partitions spread over the cluster.

Entry fields: channel, user, client, data (the publication's JSON as Centrifugo sent it), ts
(server time, unix milliseconds). The entry id Redis assigns is returned to the publisher and to
every subscriber in the publication's tags.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from django.conf import settings

from partitions.rules import StreamTarget
from realtime.redis import get_redis


class StreamUnavailable(Exception):
    """Redis did not confirm the write: the publish must not be acknowledged."""


@dataclass(frozen=True, slots=True)
class Appended:
    key: str
    entry_id: str


def stream_key(stream: str, partition: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:stream:{{{stream}:{partition}}}"


def stream_append(*, target: StreamTarget, channel: str, user: str, client: str, data: bytes) -> Appended:
    key = stream_key(target.stream, target.partition)
    fields: dict[str, str | bytes] = {
        "channel": channel,
        "user": user,
        "client": client,
        "data": data,
        "ts": str(int(time.time() * 1000)),
    }
    try:
        entry_id = get_redis().xadd(key, fields, maxlen=target.max_length, approximate=True)  # type: ignore[arg-type]
    except redis.RedisError as exc:
        raise StreamUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return Appended(key=key, entry_id=entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id))
