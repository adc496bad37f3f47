"""Channel lifecycle for one partition and one worker group: when a channel becomes active and when
it goes inactive, decided from the log and kept in Redis so a new owner continues where the old
one stopped.

A channel is active from its first message or join entry until it has had no message and no member
for `idle_seconds`. Members come from join/leave entries (member = the entry's client id): a join
adds one, a leave removes it, and a channel with members is never idle. Time is the log's: an
entry's time is its id's milliseconds (Redis's clock), and `due(now_ms)` looks no later than
Redis's clock (a worker clock running ahead cannot make a channel idle early) nor than the
oldest entry the group has not finished (so a worker working off a backlog does not call a
channel idle whose next message it simply has not read yet).

The runner of the partition's owner calls `before(message)` for every entry, in log order, and
dispatches the events it returns before the entry's own handler; it calls `due(now_ms)` about
once a second and dispatches what it returns. It calls either again only after dispatching what
the previous call returned, and `close()` when it gives the partition up.

Keys (base `<prefix>:life:{<stream>:<partition>}:<group>`: the stream's hash tag, one Cluster slot):
- `<base>:active`  hash: active channel -> "<active since ms>|<first entry id>"
- `<base>:idle`    sorted set: active channels WITHOUT members -> last activity (ms). `due` reads
                   only its expired head: O(log n + expired), whatever the number of channels.
- `<base>:busy`    sorted set: active channels WITH members -> last join, leave or message (ms).
- `<base>:m:<channel>` set: the channel's members (client ids); gone when empty.
- `<base>:closing` hash: channel -> "<token>|<since>|<first id>|<last activity>": inactive claimed
                   by the instance holding <token>, not yet known to be dispatched.
- `<base>:seen`    the newest entry id whose state change was applied (see below).

Nothing lives for ever. Every key expires STATE_TTL_MS (7 days) after the last script that wrote
it; `due` rewrites the partition's keys every second while a worker owns it, so only the state of a
group that stopped (or of a stream nobody reads) goes. A member whose leave never came (trimmed
away before it was read; its join/leave record expired) would keep its channel active for ever:
`due` drops the members of a channel with no join, leave or message for MEMBERS_TTL_MS (24 h, the
same time after which streams.joinleave forgets a silent member without writing its leave) and
returns its inactive.

Guarantees, across a crash of the owner at any point:
- active: at most once per active period. The state change of an entry and the watermark `seen`
  are one script, so an entry handled again (its handler failed, or the owner died before the ack)
  changes nothing the second time: no second active. A crash after the script and before
  `on_channel_active` returned therefore loses that call (the new owner goes on with the entry's
  own handler): the issue's rule "never a second active for a channel already active" wins.
- inactive: at least once. `due` moves the channel from active to `closing` under this
  instance's token in one script, then returns it; the record is deleted by this instance's next
  call (the previous events were dispatched by then). A new Lifecycle (the next owner) re-claims
  and returns, on its first `due`, whatever another instance left in `closing`; an entry of a
  channel left in `closing` returns that inactive before the new active. So a duplicate inactive
  is possible only when the owner died or lost the partition after claiming and before its next call.
- Cost per message: a message of a channel this instance already knows is active, with no idle gap,
  costs no Redis command (its activity time is kept in memory and written by the next `due`, one
  `ZADD XX GT` for all channels touched since). So after a crash the dead owner's last second of
  activity times can be lost: an inactive then fires up to one `due` interval early, never twice,
  never missed. First message per channel per instance, joins, leaves and idle gaps: one script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import uuid4

from django.conf import settings

from realtime.redis import Client
from streams.joinleave import MEMBERS_TTL_MS

EventKind = Literal["active", "inactive"]
DUE_LIMIT = 1000  # inactive channels claimed per `due` call; the rest on the next call
STATE_TTL_MS = 7 * 24 * 3600 * 1000  # a partition's state nobody wrote for a week (no owner) expires

# Entry id order without Lua numbers losing precision: ms (13 digits) and seq fit in a double.
_ORDER = """
local function newer(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
local function confirm(closing, token, first, last)
  for i = first, last do
    local v = redis.call('HGET', closing, ARGV[i])
    if v and string.sub(v, 1, #token + 1) == token .. '|' then redis.call('HDEL', closing, ARGV[i]) end
  end
end
"""

# KEYS active, idle, closing, seen, members-of-channel, busy. ARGV token, entry id, entry ms, idle ms,
# type, channel, member, known activity ms ("" none), state TTL ms, n confirm, confirm channels...
# Returns {members, last activity or -1 (not active), event, event, ...}; an event is
# "inactive|<since>|<first id>|<last>" or "active".
_BEFORE = (
    _ORDER
    + """
local token, id, ms, idle, kind, ch, who = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7]
local n = tonumber(ARGV[10])
confirm(KEYS[3], token, 11, 10 + n)
if ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[2], 'XX', 'GT', ARGV[8], ch)
  redis.call('ZADD', KEYS[6], 'XX', 'GT', ARGV[8], ch)
end
local out = {}
local seen = redis.call('GET', KEYS[4])
if not seen or newer(id, seen) then
  redis.call('SET', KEYS[4], id)
  local active = redis.call('HGET', KEYS[1], ch)
  local claimed = redis.call('HGET', KEYS[3], ch)
  if claimed and not active then
    -- another owner claimed this inactive and never confirmed it: it precedes the new period
    local rest = string.match(claimed, '^[^|]*|(.*)$')
    redis.call('HSET', KEYS[3], ch, token .. '|' .. rest)
    table.insert(out, 'inactive|' .. rest)
  end
  if active and redis.call('SCARD', KEYS[5]) == 0 then
    local last = redis.call('ZSCORE', KEYS[2], ch)
    if last and ms - tonumber(last) >= idle then  -- idle long enough before this entry: that period ended
      local rest = active .. '|' .. last
      redis.call('HDEL', KEYS[1], ch)
      redis.call('ZREM', KEYS[2], ch)
      redis.call('HSET', KEYS[3], ch, token .. '|' .. rest)
      table.insert(out, 'inactive|' .. rest)
      active = false
    end
  end
  if kind == 'leave' then
    if active and redis.call('SREM', KEYS[5], who) == 1 then
      if redis.call('SCARD', KEYS[5]) == 0 then
        redis.call('ZREM', KEYS[6], ch)
        redis.call('ZADD', KEYS[2], 'GT', ms, ch)  -- the last member left: idle from now
      else
        redis.call('ZADD', KEYS[6], 'GT', ms, ch)
      end
    end
  else
    if not active then
      redis.call('HSET', KEYS[1], ch, ms .. '|' .. id)
      table.insert(out, 'active')
      active = true
    end
    if kind == 'join' then
      redis.call('SADD', KEYS[5], who)
      redis.call('ZREM', KEYS[2], ch)
      redis.call('ZADD', KEYS[6], 'GT', ms, ch)
    elseif redis.call('SCARD', KEYS[5]) == 0 then
      redis.call('ZADD', KEYS[2], 'GT', ms, ch)
    else  -- (not XX: a channel whose members were recorded before the busy set existed joins it)
      redis.call('ZADD', KEYS[6], 'GT', ms, ch)
    end
  end
elseif redis.call('HEXISTS', KEYS[1], ch) == 1 then
  -- handled again: state already has it, but not its time
  if redis.call('SCARD', KEYS[5]) == 0 then
    redis.call('ZADD', KEYS[2], 'XX', 'GT', ms, ch)
  else
    redis.call('ZADD', KEYS[6], 'XX', 'GT', ms, ch)
  end
end
local last = -1
if redis.call('HEXISTS', KEYS[1], ch) == 1 then
  last = tonumber(redis.call('ZSCORE', KEYS[2], ch) or redis.call('ZSCORE', KEYS[6], ch) or 0)
end
-- Nothing here lives forever: a key this script wrote expires unless written again (module doc).
if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('PEXPIRE', KEYS[5], ARGV[9]) end
for i = 1, 4 do if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[9]) end end
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('PEXPIRE', KEYS[6], ARGV[9]) end
table.insert(out, 1, last)
table.insert(out, 1, redis.call('SCARD', KEYS[5]))
return out
"""
)

# KEYS active, idle, closing, stream, busy, seen. ARGV token, now ms, idle ms, group, limit, takeover
# (1/0), state TTL ms, members TTL ms, key base, n confirm, confirm channels..., m, then ms/channel
# pairs of activity to record: m values for channels without members (idle), the rest with (busy).
# Returns {channel, "<since>|<first id>|<last>", ...}.
_DUE = (
    _ORDER
    + """
local token, now, idle, group, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local n = tonumber(ARGV[10])
confirm(KEYS[3], token, 11, 10 + n)
local split = 11 + n + tonumber(ARGV[11 + n])
for i = 12 + n, split, 1000 do  -- in slices: unpack() of thousands of values overflows Lua's stack
  redis.call('ZADD', KEYS[2], 'XX', 'GT', unpack(ARGV, i, math.min(i + 999, split)))
end
for i = split + 1, #ARGV, 1000 do
  redis.call('ZADD', KEYS[5], 'XX', 'GT', unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local out = {}
if ARGV[6] == '1' then  -- a new owner: inactive another instance claimed and never confirmed
  local left = redis.call('HGETALL', KEYS[3])
  for i = 1, #left, 2 do
    local owner, rest = string.match(left[i + 1], '^([^|]*)|(.*)$')
    if owner ~= token then
      redis.call('HSET', KEYS[3], left[i], token .. '|' .. rest)
      table.insert(out, left[i]); table.insert(out, rest)
    end
  end
end
-- The log's clock: no later than the oldest entry the group has not finished (pending, or not
-- yet delivered); `now` when it has finished everything. Never later than Redis's own clock, which
-- gave the entries their times: a worker whose clock runs ahead must not call a channel idle early.
local t = redis.call('TIME')
local horizon = math.min(now, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
if redis.call('EXISTS', KEYS[4]) == 1 then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[4])) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info['name'] == group then
      local oldest = nil
      if tonumber(info['pending']) > 0 then oldest = redis.call('XPENDING', KEYS[4], group)[2] end
      local after = redis.call('XRANGE', KEYS[4], '(' .. info['last-delivered-id'], '+', 'COUNT', 1)[1]
      if after and (not oldest or newer(oldest, after[1])) then oldest = after[1] end
      if oldest then horizon = math.min(horizon, tonumber(string.match(oldest, '^(%d+)'))) end
    end
  end
end
local function claim(set, ch, last)
  local rest = (redis.call('HGET', KEYS[1], ch) or (last .. '|')) .. '|' .. last
  redis.call('HDEL', KEYS[1], ch)
  redis.call('ZREM', set, ch)
  redis.call('HSET', KEYS[3], ch, token .. '|' .. rest)
  table.insert(out, ch); table.insert(out, rest)
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', horizon - idle, 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #expired, 2 do claim(KEYS[2], expired[i], expired[i + 1]) end
-- Members whose leave never came (trimmed before it was read, or their join/leave record expired):
-- a channel with no join, leave or message for the members TTL has none left. Its members set is
-- in this partition's slot (the key base's hash tag), so this script may delete it.
local stranded = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', horizon - tonumber(ARGV[8]), 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #stranded, 2 do
  redis.call('DEL', ARGV[9] .. ':m:' .. stranded[i])
  claim(KEYS[5], stranded[i], stranded[i + 1])
end
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[6]}) do
  if redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ARGV[7]) end
end
return out
"""
)

_CONFIRM = _ORDER + "\nconfirm(KEYS[1], ARGV[1], 2, #ARGV)\nreturn 0\n"


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    channel: str
    info: dict[str, Any] = field(default_factory=dict)


def lifecycle_key(stream_key: str, group: str) -> str:
    """`<prefix>:stream:{s:p}` -> `<prefix>:life:{s:p}:<group>`."""
    tag = stream_key[stream_key.index("{") : stream_key.rindex("}") + 1]
    return f"{settings.REDIS_KEY_PREFIX}:life:{tag}:{group}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _inactive(channel: str, rest: str, idle_ms: int) -> Event:
    since, first_id, last = rest.split("|")
    info = {"active_since_ms": int(since), "first_entry_id": first_id, "last_activity_ms": int(float(last)),
            "idle_ms": idle_ms}  # fmt: skip
    return Event("inactive", channel, info)


class Lifecycle:
    """The lifecycle of the channels of one partition (`key`, a stream key) for worker group `group`."""

    def __init__(self, client: Client, *, key: str, group: str, idle_seconds: float) -> None:
        self.key = key
        self.group = group
        self.idle_ms = int(idle_seconds * 1000)
        self.base = lifecycle_key(key, group)
        self.token = uuid4().hex  # names this instance's claims in `closing`
        self._client = client
        self._before = client.register_script(_BEFORE)
        self._due = client.register_script(_DUE)
        self._confirm_script = client.register_script(_CONFIRM)
        # channel -> [members, last activity ms]: channels this instance knows are active
        self._known: dict[str, list[int]] = {}
        self._touched: dict[str, int] = {}  # activity not yet written to Redis (the next `due`)
        self._unconfirmed: list[str] = []  # inactive returned by the last call, dispatched by the next
        self._took_over = False

    def before(self, message: Any) -> list[Event]:
        """Events to dispatch before `message` (a workers Message of this partition, in log order)."""
        channel: str = message.channel
        known = self._known.get(channel)
        if known is not None and not self._unconfirmed and message.type == "message":
            # The hot path: an active channel, no Redis command (see the module's "Cost per message").
            # One with members is never idle, but its time is kept too (the stranded-member bound).
            entry_id: str = message.id
            ms = int(entry_id[: entry_id.index("-")])
            last = known[1]
            if known[0] or ms - last < self.idle_ms:
                if ms > last:
                    known[1] = self._touched[channel] = ms
                return []
        entry_id = message.id
        ms = int(entry_id.partition("-")[0])
        return self._apply(channel, message.type, entry_id, ms, message.client or f"user:{message.user}", message.user)

    def _apply(self, channel: str, kind: str, entry_id: str, ms: int, member: str, user: str) -> list[Event]:
        base = self.base
        keys = [f"{base}:active", f"{base}:idle", f"{base}:closing", f"{base}:seen", f"{base}:m:{channel}",
                f"{base}:busy"]  # fmt: skip
        touched = self._touched.pop(channel, None)
        confirm = self._unconfirmed
        args = [self.token, entry_id, ms, self.idle_ms, kind, channel, member, touched or "", STATE_TTL_MS,
                len(confirm), *confirm]  # fmt: skip
        try:
            reply = self._before(keys=keys, args=args)
        except Exception:
            if touched is not None:  # not written: keep it for the next call
                self._touched[channel] = max(touched, self._touched.get(channel, 0))
            raise
        self._unconfirmed = []
        members, last, *raw = reply
        events: list[Event] = []
        for item in raw:
            text = _text(item)
            if text == "active":
                info = {"entry_id": entry_id, "by": kind, "user": user, "client": member, "at_ms": ms}
                events.append(Event("active", channel, info))
            else:
                events.append(_inactive(channel, text.partition("|")[2], self.idle_ms))
                self._unconfirmed.append(channel)
        if int(last) < 0:
            self._known.pop(channel, None)
        else:
            self._known[channel] = [int(members), int(last)]
        return events

    def due(self, now_ms: int) -> list[Event]:
        """Channels idle long enough as of `now_ms` (and of the log), claimed inactive: dispatch them."""
        base = self.base
        confirm = self._unconfirmed
        idle: list[Any] = []
        busy: list[Any] = []
        for channel, ms in self._touched.items():
            known = self._known.get(channel)
            (busy if known is not None and known[0] else idle).extend((ms, channel))
        args = [self.token, now_ms, self.idle_ms, self.group, DUE_LIMIT, "0" if self._took_over else "1",
                STATE_TTL_MS, MEMBERS_TTL_MS, base, len(confirm), *confirm, len(idle), *idle, *busy]  # fmt: skip
        keys = [f"{base}:active", f"{base}:idle", f"{base}:closing", self.key, f"{base}:busy", f"{base}:seen"]
        reply = self._due(keys=keys, args=args)
        self._took_over = True
        self._touched = {}
        events = []
        for i in range(0, len(reply), 2):
            channel = _text(reply[i])
            events.append(_inactive(channel, _text(reply[i + 1]), self.idle_ms))
            self._known.pop(channel, None)
        self._unconfirmed = [e.channel for e in events]
        return events

    def close(self) -> None:
        """The partition is given up: confirm what was dispatched, write the activity kept in memory."""
        if self._unconfirmed:
            self._confirm_script(keys=[f"{self.base}:closing"], args=[self.token, *self._unconfirmed])
        if self._touched:
            self._client.zadd(f"{self.base}:idle", self._touched, xx=True, gt=True)
            self._client.zadd(f"{self.base}:busy", self._touched, xx=True, gt=True)
        self._unconfirmed = []
        self._touched = {}
        self._known = {}


def lifecycle_state(client: Client, *, key: str, group: str) -> dict[str, Sequence[str]]:
    """What Redis holds for one partition and group (tests, a shell): active, idle, closing channels."""
    base = lifecycle_key(key, group)
    pipe = client.pipeline(transaction=False)
    pipe.hkeys(f"{base}:active")
    pipe.zrange(f"{base}:idle", 0, -1)
    pipe.hkeys(f"{base}:closing")
    active, idle, closing = pipe.execute()
    return {"active": sorted(map(_text, active)), "idle": sorted(map(_text, idle)),
            "closing": sorted(map(_text, closing))}  # fmt: skip
