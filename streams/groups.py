"""Worker groups over the log as an operator sees them (stream_stats, the admin): per group and
partition, who owns it, how far it has acknowledged, and its dead letters.

The worker SDK (workers/) names these keys (issue 12's contract); they are read here only:
- `<prefix>:lease:{<stream>:<partition>}:<group>` holds "<worker name> <fencing token>" with a TTL:
  the partition's owner;
- `<prefix>:workers:<group>`: live workers, a sorted set scored by expiry (unix ms);
- `<prefix>:life:{<stream>:<partition>}:<group>:active`: the channels active for the group;
- `<prefix>:dead:{<stream>:<partition>}` (streams.consumer.dead_letter_key): dead letters of every
  group, each with a `group` field.

Two pipelined round trips for all partitions (streams.stats adds them to its three):
1. per group: GET and PTTL of its lease, HLEN of its active channels (workers.lifecycle), XPENDING's summary when it has pending entries (the oldest
   one); per partition: XLEN of its dead-letter stream;
2. per group with pending entries: the entry just before its oldest pending one (XREVRANGE, COUNT 1):
   every entry up to it is acknowledged; per dead-letter stream of at most DEAD_COUNT_LIMIT
   entries: a script that counts them by group in Redis (no entry crosses the network).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from realtime.redis import Client
from streams.consumer import dead_letter_key

DEAD_COUNT_LIMIT = 10_000  # a longer dead-letter stream: total only, the per-group count is unknown

# KEYS[1] a dead-letter stream; returns {group, count, group, count, ...}
_COUNT_BY_GROUP = """
local counts, start = {}, '-'
while true do
  local batch = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 500)
  if #batch == 0 then break end
  for _, entry in ipairs(batch) do
    local fields, group = entry[2], ''
    for i = 1, #fields, 2 do if fields[i] == 'group' then group = fields[i + 1] break end end
    counts[group] = (counts[group] or 0) + 1
  end
  start = '(' .. batch[#batch][1]
end
local out = {}
for group, n in pairs(counts) do table.insert(out, group); table.insert(out, n) end
return out
"""

# per stream key: (group name, pending, last-delivered-id) as XINFO GROUPS reported them
GroupRows = Mapping[str, Sequence[tuple[str, int, str]]]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def lease_key(stream_key: str, group: str) -> str:
    tag = stream_key[stream_key.index("{") : stream_key.rindex("}") + 1]
    return f"{settings.REDIS_KEY_PREFIX}:lease:{tag}:{group}"


def active_channels_key(stream_key: str, group: str) -> str:
    """workers.lifecycle's hash of the group's active channels in the partition."""
    tag = stream_key[stream_key.index("{") : stream_key.rindex("}") + 1]
    return f"{settings.REDIS_KEY_PREFIX}:life:{tag}:{group}:active"


def workers_key(group: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:workers:{group}"


@dataclass
class WorkerView:
    groups: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # GroupInfo's fields
    dead_letters: dict[str, int] = field(default_factory=dict)  # per stream key, every group's


def worker_view(client: Client, groups: GroupRows) -> WorkerView:
    view = WorkerView()
    pipe = client.pipeline(transaction=False)
    for key, rows in groups.items():
        for name, pending, _ in rows:
            pipe.get(lease_key(key, name))
            pipe.pttl(lease_key(key, name))
            pipe.hlen(active_channels_key(key, name))
            if pending:
                pipe.xpending(key, name)
        pipe.xlen(dead_letter_key(key))
    replies = iter(pipe.execute())

    oldest: dict[tuple[str, str], str] = {}
    for key, rows in groups.items():
        for name, pending, last_delivered in rows:
            lease, ttl, active = next(replies), next(replies), next(replies)
            owner, _, token = _text(lease).rpartition(" ") if lease else ("", "", "")
            fields: dict[str, Any] = {"owner": owner, "owner_token": int(token) if token.isdigit() else None,
                                      "lease_ttl_ms": int(ttl) if lease and int(ttl) >= 0 else None,
                                      "active_channels": int(active)}  # fmt: skip
            if pending:
                oldest[key, name] = _text(next(replies)["min"])
            else:  # everything delivered is acknowledged
                fields["last_acked_id"] = None if last_delivered == "0-0" else last_delivered
            view.groups[key, name] = fields
        view.dead_letters[key] = int(next(replies))

    pipe = client.pipeline(transaction=False)
    for (key, _), first_pending in oldest.items():
        pipe.xrevrange(key, max=f"({first_pending}", min="-", count=1)
    counted = [key for key, n in view.dead_letters.items() if 0 < n <= DEAD_COUNT_LIMIT]
    for key in counted:
        pipe.execute_command("EVAL", _COUNT_BY_GROUP, 1, dead_letter_key(key))  # ClusterPipeline has no eval()
    replies = iter(pipe.execute() if oldest or counted else ())
    for group_key in oldest:
        before = next(replies)
        view.groups[group_key]["last_acked_id"] = _text(before[0][0]) if before else None
    by_group: dict[str, dict[str, int]] = {}
    for key in counted:
        flat = next(replies)
        by_group[key] = {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
    for (key, name), fields in view.groups.items():
        total = view.dead_letters[key]
        fields["dead_letters"] = by_group[key].get(name, 0) if key in by_group else (0 if not total else None)
    return view


def live_workers(client: Client, group: str) -> list[str]:
    """The workers of `group` whose registration has not expired, by name."""
    now_ms = int(time.time() * 1000)
    names: list[bytes] = client.zrangebyscore(workers_key(group), now_ms, "+inf")  # type: ignore[assignment]
    return sorted(_text(name) for name in names)
