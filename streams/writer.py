"""The stream writer: one round trip to Redis per accepted publication, before the publish is
acknowledged. Two transports, one command: `stream_append_async` on the callback workers' event
loop (auto-pipelined, see realtime.redis_async), `stream_append` through redis-py elsewhere.

Key layout: `<prefix>:stream:{<stream>:<partition>}`. The braces are a Redis Cluster hash tag: each
partition lives in one slot, different partitions spread over the cluster, and the keys a write
touches (the partition and its idempotency keys) always share a slot.

Entry fields: channel, user, client, data (the publication's JSON as Centrifugo sent it, or the
decoded bytes of a binary publication, then marked enc=binary), ts (server time, unix
milliseconds), and idem (the idempotency key, when the publisher gave one). The entry id Redis
assigns is the message id: unique within its key, ordered by server time.

A plain publication is one `XADD key MAXLEN ~ N * fields...`. One with an idempotency key or a
retention age is a Lua script instead, so the idempotency check and trimming (MINID ~ by age)
happen atomically with the XADD — still one round trip. An idempotency key is one publisher's
retry of one publication on one channel (streams.idempotency): a retry with the same data gets the
first entry id, the same key with other data is refused (IdempotencyKeyReused).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from redis.cluster import RedisCluster
from redis.exceptions import AskError, MovedError, NoScriptError, TryAgainError

from partitions.rules import StreamTarget
from realtime.redis import REDIS_ERRORS, REDIS_UNAVAILABLE, Client, get_redis, node_for_key
from realtime.redis_async import RedisReplyError, RedisUnavailable, get_async_redis
from streams.idempotency import PublicationKey

# KEYS[1] stream, KEYS[2] the idempotency key, when there is one (streams.idempotency: one
# publisher's key on one channel, never shared with another publisher). Without one the script
# gets one key: an empty KEYS[2] would be a key in slot 0, and Redis Cluster refuses a script
# whose keys are in different slots (CROSSSLOT).
# ARGV[1] max length (0: none), ARGV[2] min id by age ("": none), ARGV[3] idempotency TTL seconds,
# ARGV[4] the data digest ("" without a key), ARGV[5..] field/value pairs.
# The idempotency key holds "<data digest> <entry id>".
# Returns {1, id} for a new entry, {0, id} when the key already stored this data, {2, ""} when
# the key already stored OTHER data (a reused key: nothing is written).
_APPEND = """
if KEYS[2] then
  local seen = redis.call('GET', KEYS[2])
  if seen then
    local n = string.len(ARGV[4])
    if string.sub(seen, 1, n + 1) == ARGV[4] .. ' ' then return {0, string.sub(seen, n + 2)} end
    return {2, ''}
  end
end
local id
if ARGV[1] ~= '0' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 5))
else
  id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
end
if ARGV[2] ~= '' then
  redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
end
if KEYS[2] then
  redis.call('SET', KEYS[2], ARGV[4] .. ' ' .. id, 'EX', ARGV[3])
end
return {1, id}
"""


class StreamUnavailable(Exception):
    """Redis did not confirm the write: the publish must not be acknowledged."""


class IdempotencyKeyReused(Exception):
    """The publisher's idempotency key already stored a different publication: nothing was written."""


@dataclass(slots=True)
class Appended:
    key: str
    entry_id: str
    duplicate: bool = False  # an earlier publish with the same idempotency key stored it


_keys: dict[tuple[str, str, int], str] = {}


def stream_key(stream: str, partition: int) -> str:
    prefix = settings.REDIS_KEY_PREFIX
    key = _keys.get((prefix, stream, partition))
    if key is None:
        if len(_keys) > 100_000:  # operators rename streams; do not grow without bound
            _keys.clear()
        key = _keys[prefix, stream, partition] = f"{prefix}:stream:{{{stream}:{partition}}}"
    return key


def idempotency_key(stream: str, partition: int, scope: str) -> str:
    """In the partition's hash tag (the same Redis Cluster slot as the stream); `scope` is
    PublicationKey.scope, a digest of (user, channel, key), so publishers never share one."""
    return f"{settings.REDIS_KEY_PREFIX}:idem:{{{stream}:{partition}}}:{scope}"


_APPEND_SHA = hashlib.sha1(_APPEND.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


@dataclass(slots=True)
class _Append:
    """One publication's write, ready to send: the same command for the sync and the async path."""

    key: str
    command: tuple[object, ...]
    scripted: bool  # EVALSHA: replies [created, id], and NOSCRIPT means "load the script, run again"

    def appended(self, reply: Any) -> Appended:
        if not self.scripted:
            return Appended(key=self.key, entry_id=_text(reply))
        created, entry_id = reply
        if created == 2:
            raise IdempotencyKeyReused("idempotency key already used for a different publication")
        return Appended(key=self.key, entry_id=_text(entry_id), duplicate=not created)


def _append_command(
    *,
    target: StreamTarget,
    channel: str,
    user: str,
    client: str,
    data: bytes,
    idempotency: PublicationKey | None,
    binary: bool,
) -> _Append:
    key = stream_key(target.stream, target.partition)
    now_ms = int(time.time() * 1000)
    fields: list[str | bytes] = ["channel", channel, "user", user, "client", client, "data", data, "ts", str(now_ms)]
    if idempotency is not None:
        fields += ["idem", idempotency.key]
    if binary:
        fields += ["enc", "binary"]
    if idempotency is None and not target.max_age_seconds:
        # The common case needs no script: a plain XADD costs Redis less CPU than EVALSHA.
        trim = ("MAXLEN", "~", target.max_length) if target.max_length else ()
        return _Append(key, ("XADD", key, *trim, "*", *fields), scripted=False)
    min_id = f"{now_ms - target.max_age_seconds * 1000}-0" if target.max_age_seconds else ""
    keys: tuple[str, ...] = (key,)
    digest = ""
    if idempotency is not None:
        keys = (key, idempotency_key(target.stream, target.partition, idempotency.scope))
        digest = idempotency.data_digest
    command = (
        "EVALSHA", _APPEND_SHA, len(keys), *keys, target.max_length or 0, min_id, settings.IDEMPOTENCY_WINDOW, digest
    )  # fmt: skip
    return _Append(key, (*command, *fields), scripted=True)


def stream_append(
    *,
    target: StreamTarget,
    channel: str,
    user: str,
    client: str,
    data: bytes,
    idempotency: PublicationKey | None = None,
    binary: bool = False,
) -> Appended:
    """Store one publication (blocking, redis-py): the server API and management commands.
    Raises StreamUnavailable (not confirmed: it may still have been written) or
    IdempotencyKeyReused. With REDIS_ACK=replicated, confirmed means WAIT counted
    REDIS_ACK_REPLICAS replicas holding it."""
    write = _append_command(
        target=target, channel=channel, user=user, client=client, data=data, idempotency=idempotency, binary=binary
    )
    try:
        redis_client = get_redis()  # a Cluster client reads the slot map when created: it may fail
        if settings.REDIS_ACK == "replicated":
            reply = _append_replicated(redis_client, write)
        else:
            try:
                # redis-py's public command call. The client makes no silent retries (realtime.redis):
                # a retried XADD whose first attempt landed would store the message twice.
                reply = redis_client.execute_command(*write.command)  # type: ignore[no-untyped-call]
            except NoScriptError:  # a restarted or new Redis: load the script once, then run it
                redis_client.execute_command("SCRIPT", "LOAD", _APPEND)  # type: ignore[no-untyped-call]
                reply = redis_client.execute_command(*write.command)  # type: ignore[no-untyped-call]
    except REDIS_ERRORS as exc:
        raise StreamUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return write.appended(reply)


def wait_timeout_ms() -> int:
    """WAIT's deadline: well inside the socket timeout, so Redis answers "n replicas" before the
    read times out (a timeout would leave "was it replicated?" unanswered). Redis checks blocked
    clients' deadlines at its `hz` (10/s by default): a WAIT of 200 ms measured 215-300 ms here, so
    40% of REDIS_SOCKET_TIMEOUT (100 ms of 250) leaves the 100 ms that lag needs."""
    return max(1, int(settings.REDIS_SOCKET_TIMEOUT * 400))


def _append_replicated(redis_client: Client, write: _Append) -> Any:
    """The write and `WAIT replicas timeout` in one pipeline on ONE connection, to the master that
    owns the key (WAIT counts the replicas that have this connection's writes). MOVED, ASK and
    TRYAGAIN mean the node did not run the write: follow them (a few times). NOSCRIPT: load, rerun."""
    needed = settings.REDIS_ACK_REPLICAS
    timeout_ms = wait_timeout_ms()
    asking: tuple[str, int] | None = None
    for _ in range(_REDIRECTS):
        node, owner = node_for_key(redis_client, write.key, asking)
        pipe = node.pipeline(transaction=False)
        if asking:
            pipe.execute_command("ASKING")  # type: ignore[no-untyped-call]
        pipe.execute_command(*write.command)  # type: ignore[no-untyped-call]
        pipe.execute_command("WAIT", needed, timeout_ms)  # type: ignore[no-untyped-call]
        try:
            *_, reply, replicas = pipe.execute(raise_on_error=False)
        except REDIS_UNAVAILABLE:
            _refresh_slot_map(redis_client, write.key)
            raise  # maybe written: not sent again (realtime.redis), the caller answers "temporary"
        asking = None
        if isinstance(reply, NoScriptError):
            node.execute_command("SCRIPT", "LOAD", _APPEND)  # type: ignore[no-untyped-call]
            continue
        if isinstance(reply, MovedError):
            _refresh_slot_map(redis_client, write.key)  # RedisCluster follows this MOVED and updates its map
            continue
        if isinstance(reply, AskError):  # MovedError is one too: checked first
            asking = (reply.host, reply.port)
            continue
        if isinstance(reply, TryAgainError):
            time.sleep(0.05)  # a slot being migrated: the keys are on their way
            continue
        if isinstance(reply, Exception):
            raise reply
        if isinstance(replicas, Exception):
            raise replicas
        if int(replicas) < needed:
            raise StreamUnavailable(
                f"REDIS_ACK=replicated: {replicas} of {needed} replicas of {owner} confirmed the entry "
                f"within {timeout_ms} ms (it is on the master, maybe not on a replica)"
            )
        return reply
    raise StreamUnavailable(f"{write.key}: still redirected after {_REDIRECTS} tries (cluster resharding?)")


_REDIRECTS = 5


def _refresh_slot_map(redis_client: Client, key: str) -> None:
    """After a node failed us, let RedisCluster re-read the slot map (it does on a connection
    error of its own command) so the next write goes to the new master after a failover."""
    if isinstance(redis_client, RedisCluster):
        with contextlib.suppress(*REDIS_ERRORS):
            redis_client.type(key)


async def stream_append_async(
    *,
    target: StreamTarget,
    channel: str,
    user: str,
    client: str,
    data: bytes,
    idempotency: PublicationKey | None = None,
    binary: bool = False,
) -> Appended:
    """Store one publication on the event loop (the proxy fast path): the same command, sent on
    the worker's auto-pipelined connection (realtime.redis_async; in a Cluster, the connection to
    the master that owns the partition's slot).

    StreamUnavailable also when REDIS_ACK=replicated and WAIT did not confirm REDIS_ACK_REPLICAS
    replicas in time (NotReplicated): the entry is on the master, so the publisher's retry stores
    it once only with the same idempotency key."""
    write = _append_command(
        target=target, channel=channel, user=user, client=client, data=data, idempotency=idempotency, binary=binary
    )
    redis_client = get_async_redis()
    try:
        reply = await redis_client.submit(*write.command)
        if isinstance(reply, RedisReplyError):
            if not write.scripted or not str(reply).startswith("NOSCRIPT"):
                raise reply
            # A restarted or new Redis (in a Cluster: this master): load the script, then run it.
            await redis_client.load_script(_APPEND, key=write.key)
            reply = await redis_client.execute(*write.command)
    except (RedisUnavailable, RedisReplyError) as exc:
        raise StreamUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return write.appended(reply)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _rate_key(rule_id: int, who: str, window: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:rate:{rule_id}:{who}:{int(time.time()) // window}"


def rate_limit_hit(*, rule_id: int, who: str, limit: int, window: int) -> bool:
    """True when `who` has used up `limit` publications in the current `window` (fixed window).

    One pipelined round trip (INCR + EXPIRE NX). Raises StreamUnavailable if Redis does not answer:
    a limit that cannot be checked is not silently waived."""
    key = _rate_key(rule_id, who, window)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, window + 1, nx=True)
        count, _ = pipe.execute()
    except REDIS_ERRORS as exc:
        raise StreamUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return int(count) > limit


async def rate_limit_hit_async(*, rule_id: int, who: str, limit: int, window: int) -> bool:
    """`rate_limit_hit` on the event loop: the same two commands in one write."""
    key = _rate_key(rule_id, who, window)
    try:
        count, _ = await get_async_redis().execute_many(("INCR", key), ("EXPIRE", key, window + 1, "NX"))
    except (RedisUnavailable, RedisReplyError) as exc:
        raise StreamUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return int(count) > limit
