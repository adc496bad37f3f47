"""Dead letters: entries a consumer (`stream_consume`) or a worker (`run_worker`) gave up on after
their handler failed too many times. Each partition has one dead-letter stream,
`<prefix>:dead:{<stream>:<partition>}` (streams.consumer.dead_letter_key), holding the entry's fields
plus error, group, consumer, orig_id and deliveries. Read here for the admin's stream page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from realtime.redis import Client, get_redis
from streams.consumer import dead_letter_key
from streams.reader import entry_order


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: str  # the partition's stream key the entry came from
    id: str  # its id in the dead-letter stream
    orig_id: str
    channel: str
    group: str
    consumer: str
    deliveries: str
    error: str


def recent_dead_letters(keys: Sequence[str], *, count: int = 20, client: Client | None = None) -> list[DeadLetter]:
    """The `count` newest dead letters of the partitions `keys`, newest first: one pipelined round
    trip (split over the masters on a Cluster, each dead-letter key in its partition's slot)."""
    pipe = (client or get_redis()).pipeline(transaction=False)
    for key in keys:
        pipe.xrevrange(dead_letter_key(key), count=count)
    found = [
        DeadLetter(key, _text(entry_id), *(_text(fields.get(name, b"")) for name in _FIELDS))
        for key, entries in zip(keys, pipe.execute(), strict=True)
        for entry_id, fields in entries
    ]
    found.sort(key=lambda d: entry_order(d.id), reverse=True)
    return found[:count]


_FIELDS = (b"orig_id", b"channel", b"group", b"consumer", b"deliveries", b"error")


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
