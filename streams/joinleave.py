"""Join and leave entries in the log, for channels whose rule has `log_join_leave` (issue 12).

Centrifugo OSS tells the backend of a subscription (the subscribe proxy) but not of its end (no
unsubscribe or disconnect proxy). What it does call is sub_refresh, for every live subscription
every SUBSCRIPTION_RECHECK_INTERVAL seconds (callbacks.handlers): that call is the heartbeat.

- subscribe (allowed): `member_seen(..., joining=True)` records the member in the partition's
  members set and, when it was not there yet, appends a `join` entry — one script, one round trip,
  before the subscribe is answered (a failure is a temporary error for the client, never a miss).
- sub_refresh: the same script with the next deadline (a member that is not there — reaped
  meanwhile, or the switch turned on under a live subscription — joins again).
- the reaper (streams.reaper) runs `reap` on each partition: members whose deadline passed are
  removed and get a `leave` entry in the same script, so several reapers (every callback worker
  of every replica runs one) never emit two leaves for one member.

Keys, in the partition's hash tag (one Redis Cluster slot with the stream):
`<prefix>:members:{<stream>:<partition>}`, a sorted set: member = JSON [channel, user, client],
score = the deadline (Redis server time, unix ms) by which the next heartbeat must come. Deadlines
are on Redis' clock (TIME in the scripts), so replicas with skewed clocks agree on who is gone.

Entry fields: those of a message (channel, user, client, data, ts) and `type` ("join"/"leave");
data is JSON: join {"info": null} (the subscribe proxy request carries no connection info),
leave {"reason": "gone"} (a heartbeat that stopped cannot tell an unsubscribe from a disconnect).
Both are trimmed as the stream's messages are: a join by its channel's partition rule (max length,
max age), a leave by the stream's (StreamSpec: the loosest of the rules writing the stream).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from django.conf import settings
from redis.exceptions import NoScriptError

from partitions.rules import StreamTarget
from realtime.redis import REDIS_ERRORS, get_redis
from realtime.redis_async import RedisReplyError, RedisUnavailable, get_async_redis
from streams.writer import StreamUnavailable, stream_key

JOIN_DATA = b'{"info":null}'
LEAVE_DATA = '{"reason":"gone"}'
# A members set nobody touched for this long (every recorded member long gone, the switch off) expires.
MEMBERS_TTL_MS = 24 * 3600 * 1000

# Join and leave entries are trimmed as the stream's messages are (streams.writer): MAXLEN ~ the
# rule's max length, then MINID ~ its max age (ms; 0: none).
_TRIMMED_XADD = """
local function append(stream, max_length, max_age_ms, now_ms, ...)
  local id
  if max_length ~= '0' then
    id = redis.call('XADD', stream, 'MAXLEN', '~', max_length, '*', ...)
  else
    id = redis.call('XADD', stream, '*', ...)
  end
  if max_age_ms ~= '0' then
    redis.call('XTRIM', stream, 'MINID', '~', tostring(now_ms - tonumber(max_age_ms)) .. '-0')
  end
  return id
end
"""

# KEYS[1] stream, KEYS[2] members. ARGV[1] member, ARGV[2] deadline offset (ms from Redis' now),
# ARGV[3] max length (0: none), ARGV[4] members TTL ms, ARGV[5] max age ms (0: none), ARGV[6..] the
# join entry's fields. Returns the join's entry id, or "" when the member was already there (only
# its deadline moved).
_SEEN = (
    _TRIMMED_XADD
    + """
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local known = redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if known then return '' end
return append(KEYS[1], ARGV[3], ARGV[5], now_ms, unpack(ARGV, 6))
"""
)

# KEYS[1] stream, KEYS[2] members. ARGV[1] at most this many leaves, ARGV[2] the leave's data,
# ARGV[3] max length (0: none), ARGV[4] max age ms (0: none).
# Returns how many members were gone (each removed, each with its leave entry).
_REAP = (
    _TRIMMED_XADD
    + """
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(gone) do
  redis.call('ZREM', KEYS[2], member)
  local who = cjson.decode(member)
  append(KEYS[1], ARGV[3], ARGV[4], now_ms, 'channel', who[1], 'user', who[2], 'client', who[3],
    'data', ARGV[2], 'ts', tostring(now_ms), 'type', 'leave')
end
return #gone
"""
)
_SCRIPTS = {hashlib.sha1(s.encode()).hexdigest(): s for s in (_SEEN, _REAP)}  # noqa: S324 - Redis names scripts by SHA-1
_SEEN_SHA, _REAP_SHA = _SCRIPTS
REAP_BATCH = 500  # leaves per script call: one call holds Redis for well under a millisecond

_encode = msgspec.json.Encoder().encode


def members_key(stream: str, partition: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:members:{{{stream}:{partition}}}"


@dataclass(frozen=True, slots=True)
class Member:
    """One client's subscription to one channel, and where the channel's entries go."""

    target: StreamTarget
    channel: str
    user: str
    client: str

    def command(self, *, joining: bool) -> tuple[object, ...]:
        """The script call: a join's first deadline covers the wait for the first sub_refresh."""
        stream, partition = self.target.stream, self.target.partition
        member = _encode([self.channel, self.user, self.client])
        fields = ("channel", self.channel, "user", self.user, "client", self.client, "data", JOIN_DATA,
                  "ts", str(int(time.time() * 1000)), "type", "join")  # fmt: skip
        return (
            "EVALSHA", _SEEN_SHA, 2, stream_key(stream, partition), members_key(stream, partition), member,
            deadline_ms(joining=joining), self.target.max_length or 0, MEMBERS_TTL_MS,
            (self.target.max_age_seconds or 0) * 1000, *fields,
        )  # fmt: skip


def deadline_ms(*, joining: bool) -> int:
    """How long after this heartbeat the next one must have come (ms), else the member is gone.

    Centrifugo calls sub_refresh on the client's presence tick (every SUBSCRIPTION_RECHECK_INTERVAL
    = I seconds) once `now > expire_at` in whole seconds. sub_refresh answers now + 1, so the next
    tick (I >= 2 s later) calls again: the next heartbeat comes within I. subscribe answers now + 2
    (callbacks.handlers.SUBSCRIBE_LEAD), so the first call comes on the first tick at or after
    floor(now) + 3: within 3 + I. JOIN_LEAVE_GRACE covers the call's latency and the tick's drift."""
    interval = settings.SUBSCRIPTION_RECHECK_INTERVAL + (3 if joining else 0)
    return int((interval + settings.JOIN_LEAVE_GRACE) * 1000)


def member_seen(member: Member, *, joining: bool) -> str:
    """Record `member` (blocking, redis-py); the join's entry id, "" when it was already known.
    Raises StreamUnavailable when Redis did not confirm it."""
    command = member.command(joining=joining)
    try:
        client = get_redis()
        try:
            reply = client.execute_command(*command)  # type: ignore[no-untyped-call]
        except NoScriptError:  # a restarted or new Redis: load the script once, then run it
            client.execute_command("SCRIPT", "LOAD", _SEEN)  # type: ignore[no-untyped-call]
            reply = client.execute_command(*command)  # type: ignore[no-untyped-call]
    except REDIS_ERRORS as exc:
        raise StreamUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return _text(reply)


async def member_seen_async(member: Member, *, joining: bool) -> str:
    """`member_seen` on the event loop (the callback workers' auto-pipelined client)."""
    command = member.command(joining=joining)
    return _text(await _run_async(command, key=str(command[3])))


@dataclass(frozen=True, slots=True)
class Trim:
    """How the rules trim a stream (streams.catalog.StreamSpec): leaves are trimmed the same way."""

    max_length: int | None = None
    max_age_seconds: int | None = None


NO_TRIM = Trim()


def reap(stream: str, partition: int, trim: Trim = NO_TRIM) -> int:
    """Remove the members of one partition whose deadline passed, each with its leave entry
    (blocking); how many. Raises StreamUnavailable."""
    command = _reap_command(stream, partition, trim)
    total = 0
    try:
        client = get_redis()
        while True:
            try:
                count = int(client.execute_command(*command))  # type: ignore[no-untyped-call]
            except NoScriptError:
                client.execute_command("SCRIPT", "LOAD", _REAP)  # type: ignore[no-untyped-call]
                continue
            total += count
            if count < REAP_BATCH:
                return total
    except REDIS_ERRORS as exc:
        raise StreamUnavailable(f"{type(exc).__name__}: {exc}") from exc


async def reap_async(stream: str, partition: int, trim: Trim = NO_TRIM) -> int:
    """`reap` on the event loop."""
    command = _reap_command(stream, partition, trim)
    total = 0
    while True:
        count = int(await _run_async(command, key=str(command[3])))
        total += count
        if count < REAP_BATCH:
            return total


def _reap_command(stream: str, partition: int, trim: Trim) -> tuple[object, ...]:
    keys = (stream_key(stream, partition), members_key(stream, partition))
    max_age_ms = (trim.max_age_seconds or 0) * 1000
    return ("EVALSHA", _REAP_SHA, 2, *keys, REAP_BATCH, LEAVE_DATA, trim.max_length or 0, max_age_ms)


async def _run_async(command: tuple[object, ...], *, key: str) -> Any:
    redis_client = get_async_redis()
    try:
        reply = await redis_client.submit(*command)
        if isinstance(reply, RedisReplyError):
            if not str(reply).startswith("NOSCRIPT"):
                raise reply
            await redis_client.load_script(_SCRIPTS[str(command[1])], key=key)
            reply = await redis_client.execute(*command)
    except (RedisUnavailable, RedisReplyError) as exc:
        raise StreamUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return reply


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
