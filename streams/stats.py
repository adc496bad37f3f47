"""What is in the log, where, and how far its consumers are (`manage.py stream_stats`, the admin).

Five pipelined round trips whatever the number of keys: XINFO STREAM for every key, XINFO GROUPS
for the keys that exist, XINFO CONSUMERS for every group; then the worker-group view (streams.groups:
each group's lease, its oldest pending entry, the partition's dead letters), then the entry before
that oldest pending one and the dead letters counted per group (on a Redis Cluster, redis-py splits
each pipeline over the masters). Where each partition lives: its master's host:port (and its slot on
a Cluster, from the client's slot map, which those reads have just brought up to date).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.sentinel import SentinelConnectionPool

from realtime.redis import Client, get_redis, location
from streams.catalog import StreamSpec
from streams.groups import worker_view
from streams.reader import Message, entry_order, message_from_entry


@dataclass(frozen=True, slots=True)
class ConsumerInfo:
    name: str
    pending: int
    idle_ms: int


@dataclass(frozen=True, slots=True)
class GroupInfo:
    name: str
    consumers: int
    pending: int
    lag: int | None  # entries not yet delivered to the group; None: Redis cannot tell (or < 7.0)
    last_delivered_id: str
    members: list[ConsumerInfo]
    # The worker SDK's view (streams.groups): the lease holder ("" none), its fencing token and
    # time left, every entry up to `last_acked_id` acknowledged, and this group's dead letters in
    # the partition (None: more dead letters than streams.groups counts).
    owner: str = ""
    owner_token: int | None = None
    lease_ttl_ms: int | None = None
    last_acked_id: str | None = None
    dead_letters: int | None = 0
    active_channels: int = 0  # channels the group's workers hold active (workers.lifecycle)


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    key: str
    length: int
    first_id: str | None
    last_id: str | None
    groups: list[GroupInfo]
    node: str = ""  # host:port of the master that holds it (a socket path for a unix:// Redis)
    slot: int | None = None  # its Redis Cluster hash slot; None when not a Cluster
    dead_letters: int = 0  # entries in its dead-letter stream, every group's


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str
    partitions: list[PartitionInfo]

    @property
    def length(self) -> int:
        return sum(p.length for p in self.partitions)

    @property
    def group_names(self) -> list[str]:
        return sorted({g.name for p in self.partitions for g in p.groups})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _first_id(entry: Any) -> str | None:
    return _text(entry[0]) if entry else None


def partitions_info(keys: Sequence[str], *, client: Client | None = None) -> list[PartitionInfo]:
    client = client or get_redis()
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.xinfo_stream(key)
    streams: dict[str, dict[str, Any]] = {}
    for key, info in zip(keys, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(info, redis.ResponseError):
            if "no such key" not in str(info):
                raise info
            continue  # nothing published to this partition yet
        streams[key] = info

    pipe = client.pipeline(transaction=False)
    for key in streams:
        pipe.xinfo_groups(key)
    groups = dict(zip(streams, pipe.execute(), strict=True))

    pipe = client.pipeline(transaction=False)
    for key, key_groups in groups.items():
        for group in key_groups:
            pipe.xinfo_consumers(key, group["name"])
    members = iter(pipe.execute())

    view = worker_view(client, {key: [(_text(g["name"]), int(g["pending"]), _text(g["last-delivered-id"]))
                                      for g in key_groups] for key, key_groups in groups.items()})  # fmt: skip
    found: list[PartitionInfo] = []
    owners = iter(partition_nodes(client, keys))
    for key in keys:
        node, slot = next(owners)
        info = streams.get(key)
        if info is None:
            found.append(PartitionInfo(key, 0, None, None, [], node, slot))
            continue
        group_infos = [
            GroupInfo(
                name=_text(g["name"]),
                consumers=int(g["consumers"]),
                pending=int(g["pending"]),
                lag=g.get("lag"),
                last_delivered_id=_text(g["last-delivered-id"]),
                members=[ConsumerInfo(_text(c["name"]), int(c["pending"]), int(c["idle"])) for c in next(members)],
                **view.groups[key, _text(g["name"])],
            )
            for g in groups[key]
        ]
        found.append(
            PartitionInfo(
                key,
                int(info["length"]),
                _first_id(info["first-entry"]),
                _first_id(info["last-entry"]),
                group_infos,
                node,
                slot,
                view.dead_letters.get(key, 0),
            )
        )
    return found


def partition_nodes(client: Client, keys: Sequence[str]) -> list[tuple[str, int | None]]:
    """(host:port of the master that holds it, its Cluster slot or None) for each key. Sentinel:
    the master the sentinels name now; one server: REDIS_URL's."""
    if isinstance(client, RedisCluster):
        return [(client.get_node_from_key(key).name, key_slot(key.encode())) for key in keys]  # type: ignore[no-untyped-call]
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        host, port = pool.get_master_address()  # type: ignore[no-untyped-call]
        return [(f"{host}:{port}", None)] * len(keys)
    return [(location().where, None)] * len(keys)


def streams_info(specs: Sequence[StreamSpec], *, client: Client | None = None) -> list[StreamInfo]:
    partitions = iter(partitions_info([k for spec in specs for k in spec.keys], client=client))
    return [StreamInfo(spec.name, [next(partitions) for _ in range(spec.partitions)]) for spec in specs]


def recent_messages(keys: Sequence[str], *, count: int = 20, client: Client | None = None) -> list[Message]:
    """The `count` newest messages over all `keys`, newest first."""
    pipe = (client or get_redis()).pipeline(transaction=False)
    for key in keys:
        pipe.xrevrange(key, count=count)
    merged = [
        message_from_entry(key, entry_id, fields)
        for key, entries in zip(keys, pipe.execute(), strict=True)
        for entry_id, fields in entries
    ]
    merged.sort(key=lambda m: entry_order(m.id), reverse=True)
    return merged[:count]


def stats_table(streams: Sequence[StreamInfo]) -> str:
    """One row per partition and consumer group (a partition without groups: one row); NODE is the
    master that holds the partition, SLOT its Cluster hash slot."""
    header = (
        "KEY",
        "NODE",
        "SLOT",
        "LENGTH",
        "FIRST",
        "LAST",
        "GROUP",
        "CONSUMERS",
        "PENDING",
        "LAG",
        "LAST-DELIVERED",
    )
    rows: list[tuple[str, ...]] = [header]
    for stream in streams:
        for p in stream.partitions:
            slot = "-" if p.slot is None else str(p.slot)
            where = (p.key, p.node, slot, str(p.length), p.first_id or "-", p.last_id or "-")
            if not p.groups:
                rows.append((*where, "-", "", "", "", ""))
            for i, g in enumerate(p.groups):
                lag = "?" if g.lag is None else str(g.lag)
                rows.append(
                    (
                        *(where if i == 0 else ("",) * len(where)),
                        g.name,
                        str(g.consumers),
                        str(g.pending),
                        lag,
                        g.last_delivered_id,
                    )
                )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def groups_table(streams: Sequence[StreamInfo], live: Mapping[str, Sequence[str]] | None = None) -> str:
    """`stream_stats --groups`: one row per consumer group and partition, the worker SDK's view:
    OWNER is the lease holder (TOKEN its fencing token, TTL-MS its time left), LAST-ACKED the entry
    up to which every entry is acknowledged, DEAD the group's dead letters in that partition, ACTIVE
    its active channels there (backend workers' channel lifecycle); then
    one line per group with its live workers (`live`)."""
    header = ("GROUP", "KEY", "OWNER", "TOKEN", "TTL-MS", "LAG", "PENDING", "LAST-ACKED", "LAST-DELIVERED", "DEAD",
              "ACTIVE")  # fmt: skip
    rows: list[tuple[str, ...]] = [header]
    found = sorted(((g.name, p.key), g) for stream in streams for p in stream.partitions for g in p.groups)
    for (name, key), g in found:
        rows.append(
            (name, key, g.owner or "-", _cell(g.owner_token), _cell(g.lease_ttl_ms), _cell(g.lag, "?"),
             str(g.pending), g.last_acked_id or "-", g.last_delivered_id, _cell(g.dead_letters, "?"),
             str(g.active_channels))
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    for name, workers in sorted((live or {}).items()):
        lines.append(f"group {name}: {len(workers)} live worker(s){': ' if workers else ''}{', '.join(workers)}")
    return "\n".join(lines)


def _cell(value: int | None, missing: str = "-") -> str:
    return missing if value is None else str(value)
