"""The stream writer: one round trip to Redis per accepted publication, before the publish is
acknowledged.

Key layout: `<prefix>:stream:{<stream>:<partition>}`. The braces are a Redis Cluster hash tag: each
partition lives in one slot, different partitions spread over the cluster, and the keys a write
touches (the partition and its idempotency keys) always share a slot.

Entry fields: channel, user, client, data (the publication's JSON as Centrifugo sent it, or the
decoded bytes of a binary publication, then marked enc=binary), ts (server time, unix
milliseconds), and idem (the idempotency key, when the publisher gave one). The entry id Redis
assigns is the message id: unique within its key, ordered by server time.

The write is a Lua script, so trimming (MAXLEN ~ and/or MINID ~ by age) and the idempotency check
happen atomically with the XADD, in the same single round trip as a bare XADD.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from django.conf import settings

from partitions.rules import StreamTarget
from realtime.redis import get_redis

# KEYS[1] stream, KEYS[2] idempotency key or "".
# ARGV[1] max length (0: none), ARGV[2] min id by age ("": none), ARGV[3] idempotency TTL seconds,
# ARGV[4..] field/value pairs.
# Returns {1, id} for a new entry, {0, id} when the idempotency key already stored one.
_APPEND = """
if KEYS[2] ~= '' then
  local seen = redis.call('GET', KEYS[2])
  if seen then return {0, seen} end
end
local id
if ARGV[1] ~= '0' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 4))
else
  id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
end
if ARGV[2] ~= '' then
  redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
end
if KEYS[2] ~= '' then
  redis.call('SET', KEYS[2], id, 'EX', ARGV[3])
end
return {1, id}
"""


class StreamUnavailable(Exception):
    """Redis did not confirm the write: the publish must not be acknowledged."""


@dataclass(frozen=True, slots=True)
class Appended:
    key: str
    entry_id: str
    duplicate: bool = False  # an earlier publish with the same idempotency key stored it


def stream_key(stream: str, partition: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:stream:{{{stream}:{partition}}}"


def idempotency_key(stream: str, partition: int, key: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:idem:{{{stream}:{partition}}}:{key}"


_scripts: dict[int, redis.commands.core.Script] = {}


def _append_script(client: redis.Redis) -> redis.commands.core.Script:
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_APPEND)
    return script


def stream_append(
    *,
    target: StreamTarget,
    channel: str,
    user: str,
    client: str,
    data: bytes,
    idempotency: str = "",
    binary: bool = False,
) -> Appended:
    key = stream_key(target.stream, target.partition)
    now_ms = int(time.time() * 1000)
    min_id = f"{now_ms - target.max_age_seconds * 1000}-0" if target.max_age_seconds else ""
    fields: list[str | bytes] = ["channel", channel, "user", user, "client", client, "data", data, "ts", str(now_ms)]
    if idempotency:
        fields += ["idem", idempotency]
    if binary:
        fields += ["enc", "binary"]
    redis_client = get_redis()
    try:
        created, entry_id = _append_script(redis_client)(
            keys=[key, idempotency_key(target.stream, target.partition, idempotency) if idempotency else ""],
            args=[target.max_length or 0, min_id, settings.IDEMPOTENCY_WINDOW, *fields],
            client=redis_client,
        )
    except redis.RedisError as exc:
        raise StreamUnavailable(f"{type(exc).__name__}: {exc}") from exc
    entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return Appended(key=key, entry_id=entry, duplicate=not created)


def rate_limit_hit(*, rule_id: int, who: str, limit: int, window: int) -> bool:
    """True when `who` has used up `limit` publications in the current `window` (fixed window).

    One pipelined round trip (INCR + EXPIRE NX). Raises StreamUnavailable if Redis does not answer:
    a limit that cannot be checked is not silently waived."""
    bucket = int(time.time()) // window
    key = f"{settings.REDIS_KEY_PREFIX}:rate:{rule_id}:{who}:{bucket}"
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, window + 1, nx=True)
        count, _ = pipe.execute()
    except redis.RedisError as exc:
        raise StreamUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return int(count) > limit
