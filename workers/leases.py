"""Partition leases: which worker of a group owns which partition, and the fencing that keeps a
worker that lost its lease from acknowledging over the new owner.

Keys (each partition's keys share the stream's hash tag, so one Redis Cluster slot, so the scripts
below may touch them together):
- `<prefix>:lease:{<stream>:<partition>}:<group>` holds "<worker name> <fencing token>", with a TTL
  (PX) the owner's heartbeat renews every third of it.
- `<prefix>:fence:{<stream>:<partition>}:<group>`: the counter the fencing tokens come from; every
  acquisition takes a new one, so a lease value is never reused.
- `<prefix>:workers:<group>`: live workers, a sorted set (member: name, score: expiry in unix ms).

Every write a worker makes for a partition it owns (XACK, a dead letter) is a script that first
checks the lease still holds its value: an owner whose lease expired (paused, cut off from Redis)
and was taken over cannot ack an entry the new owner is about to re-handle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from realtime.redis import Client

_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
return token
"""
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""
# KEYS lease, stream; ARGV value, group, ids...: -1 when the lease is not ours (nothing acked).
_ACK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
return redis.call('XACK', KEYS[2], ARGV[2], unpack(ARGV, 3))
"""
# KEYS lease, stream, dead-letter stream; ARGV value, group, id, field/value pairs...
_DEAD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('XADD', KEYS[3], '*', unpack(ARGV, 4))
return redis.call('XACK', KEYS[2], ARGV[2], ARGV[3])
"""


def partition_tag(stream_key: str) -> str:
    """`<prefix>:stream:{s:p}` -> `s:p`."""
    return stream_key[stream_key.index("{") + 1 : stream_key.rindex("}")]


def lease_key(stream_key: str, group: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:lease:{{{partition_tag(stream_key)}}}:{group}"


def workers_key(group: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:workers:{group}"


class Scripts:
    """The lease scripts registered on one client (EVALSHA, loaded again after NOSCRIPT)."""

    def __init__(self, client: Client) -> None:
        self.acquire = client.register_script(_ACQUIRE)
        self.renew = client.register_script(_RENEW)
        self.release = client.register_script(_RELEASE)
        self.ack = client.register_script(_ACK)
        self.dead = client.register_script(_DEAD)


@dataclass(eq=False)
class Lease:
    """One partition this worker holds: `value` is what the lease key must still hold for any of
    its writes to apply; `valid_until` (monotonic) is when it may have expired at the latest, counted
    from when the acquiring or renewing command was SENT, so it errs early."""

    stream_key: str
    group: str
    value: str
    valid_until: float
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = lease_key(self.stream_key, self.group)

    @property
    def token(self) -> int:
        return int(self.value.rpartition(" ")[2])

    def held(self) -> bool:
        return time.monotonic() < self.valid_until


class Leases:
    """The lease operations of one worker (`name`) of `group`; every call is one round trip."""

    def __init__(self, client: Client, *, group: str, name: str, ttl_seconds: float) -> None:
        self.client = client
        self.group = group
        self.name = name
        self.ttl_ms = int(ttl_seconds * 1000)
        # Stop starting entries a little before the lease can have expired in Redis.
        self._trust = ttl_seconds * 0.9
        self._scripts = Scripts(client)

    def acquire(self, stream_key: str) -> Lease | None:
        sent = time.monotonic()
        key = lease_key(stream_key, self.group)
        fence = f"{settings.REDIS_KEY_PREFIX}:fence:{{{partition_tag(stream_key)}}}:{self.group}"
        token = int(self._scripts.acquire(keys=[key, fence], args=[self.name, self.ttl_ms]))
        if not token:
            return None
        return Lease(stream_key, self.group, f"{self.name} {token}", sent + self._trust)

    def renew(self, lease: Lease) -> bool:
        """False: the lease is gone or someone else's now (this worker must stop using it)."""
        sent = time.monotonic()
        if not int(self._scripts.renew(keys=[lease.key], args=[lease.value, self.ttl_ms])):
            lease.valid_until = 0.0
            return False
        lease.valid_until = sent + self._trust
        return True

    def release(self, lease: Lease) -> None:
        lease.valid_until = 0.0
        self._scripts.release(keys=[lease.key], args=[lease.value])

    def ack(self, lease: Lease, ids: list[Any]) -> int:
        """XACK `ids` if the lease is still ours: how many were acked, -1 when it is not ours."""
        return int(self._scripts.ack(keys=[lease.key, lease.stream_key], args=[lease.value, self.group, *ids]))

    def dead_letter(self, lease: Lease, entry_id: Any, fields: dict[bytes, Any], dead_key: str) -> int:
        """Copy the entry (with `fields`) to `dead_key` and ack it, if the lease is still ours (-1 if not)."""
        pairs = [item for pair in fields.items() for item in pair]
        return int(
            self._scripts.dead(
                keys=[lease.key, lease.stream_key, dead_key], args=[lease.value, self.group, entry_id, *pairs]
            )
        )

    def register(self) -> int:
        """Mark this worker live for a lease time; returns how many workers of the group are live."""
        now = int(time.time() * 1000)
        key = workers_key(self.group)
        pipe = self.client.pipeline(transaction=False)  # one key: one node, even on a Cluster
        pipe.zadd(key, {self.name: now + self.ttl_ms})
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zcard(key)
        pipe.pexpire(key, self.ttl_ms * 10)
        return int(pipe.execute()[2])

    def unregister(self) -> None:
        self.client.zrem(workers_key(self.group), self.name)
