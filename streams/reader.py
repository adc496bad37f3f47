"""Reading the message log: the Python API for backends, and what the `history` RPC serves.

    from streams.reader import channel_history
    page = channel_history("chat:room1", since_id="1700000000000-0", limit=100)
    for message in page.messages:
        handle(message.channel, message.data)      # data: the bytes as published (JSON unless message.binary)
    next_page = channel_history("chat:room1", cursor=page.next_cursor)

Where a channel's messages live follows its partition rule: one partition when the partition key
is the channel (the default), every partition of the stream otherwise; pages are merged in entry-id
order either way. A partition holds many channels, so a read scans at most `scan_budget` entries
per partition and hands back a cursor to continue from: a page may be short without being last.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import msgspec

from partitions.rules import PartitionKey
from partitions.store import rules_store
from realtime.redis import get_redis
from streams.payload import is_json_text
from streams.writer import stream_key

MAX_LIMIT = 1000


class Message(msgspec.Struct, frozen=True):
    """One log entry as readers see it. A msgspec Struct, not a frozen dataclass: a worker builds one
    per entry, and a frozen dataclass's __init__ (object.__setattr__ per field) cost most of a
    worker's per-entry overhead (bench/RESULTS.md, "Backend workers")."""

    stream_key: str
    id: str  # the Redis entry id: unique within its stream key, ordered by server time
    channel: str
    user: str
    client: str
    data: bytes
    # True: data is not JSON text — stored enc=binary, or a legacy entry whose bytes are not JSON
    # (invalid UTF-8, say). Readers show it as base64 (`b64data`), never as JSON.
    binary: bool
    ts: int  # server time, unix milliseconds
    # "message" (a publication: the field is absent), or "join" / "leave" (channel rules with
    # log_join_leave): then data is JSON, {"info": ...} or {"reason": ...}.
    type: str = "message"

    def json(self) -> object:
        """`data` decoded as JSON (msgspec.DecodeError for binary data)."""
        return msgspec.json.decode(self.data)

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"id": self.id, "stream": self.stream_key, "channel": self.channel,
                                   "user": self.user, "ts": self.ts}  # fmt: skip
        if self.type != "message":
            body["type"] = self.type
        if self.binary:
            body["b64data"] = base64.b64encode(self.data).decode()
        else:
            body["data"] = msgspec.Raw(self.data)
        return body


@dataclass(frozen=True, slots=True)
class Page:
    messages: list[Message]
    next_cursor: str | None  # None: nothing more was stored when this page was read


def entry_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def message_from_entry(key: str, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Message:
    """A stored entry as a Message. Never raises, whatever the entry holds (every reader — history,
    consumers, tail, the admin — goes through here): undecodable text is replaced, a bad ts is 0,
    data that is not JSON text is marked binary even without `enc=binary`."""
    data = fields.get(b"data", b"")
    return Message(
        stream_key=key,
        id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        channel=fields.get(b"channel", b"").decode(errors="replace"),
        user=fields.get(b"user", b"").decode(errors="replace"),
        client=fields.get(b"client", b"").decode(errors="replace"),
        data=data,
        binary=fields.get(b"enc") == b"binary" or not is_json_text(data),
        ts=ts_from_field(fields.get(b"ts", b"0")),
        type=fields[b"type"].decode(errors="replace") if b"type" in fields else "message",
    )


def ts_from_field(raw: bytes) -> int:
    """A stored `ts` field as unix ms (0 when it is not a plausible number)."""
    return int(raw) if raw.isdigit() and len(raw) < 20 else 0


def channel_stream_keys(channel: str) -> list[str]:
    """The keys that can hold `channel`'s messages under the current partition rules."""
    ruleset = rules_store.current()
    target = ruleset.target(channel=channel, user="")
    rule = next((r for r in ruleset.partition_rules if r.id == target.rule_id), None)
    if rule is None or rule.key is PartitionKey.CHANNEL:
        return [stream_key(target.stream, target.partition)]
    return [stream_key(rule.stream, p) for p in range(rule.partitions)]


def _scan(key: str, channel: str, start: str, limit: int, budget: int) -> tuple[list[Message], str | None]:
    """Up to `limit` messages of `channel` in `key` after `start` (exclusive "(id" or inclusive
    "ms-seq"); the second value is the last id scanned when the budget ran out first."""
    found: list[Message] = []
    scanned = 0
    redis_client = get_redis()
    while scanned < budget:
        batch = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            redis_client.xrange(key, min=start, max="+", count=min(500, budget - scanned)),
        )
        if not batch:
            return found, None
        scanned += len(batch)
        for entry_id, fields in batch:
            if fields.get(b"channel") == channel.encode():
                found.append(message_from_entry(key, entry_id, fields))
                if len(found) == limit:
                    return found, None
        start = "(" + batch[-1][0].decode()
    return found, start[1:]


def channel_history(
    channel: str,
    *,
    since_id: str | None = None,
    since_ms: int | None = None,
    cursor: str | None = None,
    limit: int = 100,
    scan_budget: int = 10_000,
    keys: Iterable[str] | None = None,
) -> Page:
    """Messages of `channel` stored after `since_id` (exclusive), or at/after `since_ms`, or after
    a previous page's `cursor`; oldest first."""
    limit = max(1, min(limit, MAX_LIMIT))
    if cursor or since_id:
        start = "(" + (cursor or since_id or "")
    elif since_ms is not None:
        start = f"{since_ms}-0"
    else:
        start = "-"
    merged: list[Message] = []
    cutoff: tuple[int, int] | None = None
    for key in keys if keys is not None else channel_stream_keys(channel):
        found, stopped_at = _scan(key, channel, start, limit, scan_budget)
        merged.extend(found)
        if stopped_at is not None:
            stop = entry_order(stopped_at)
            cutoff = stop if cutoff is None else min(cutoff, stop)
    merged.sort(key=lambda m: entry_order(m.id))
    if cutoff is not None:
        # A partition was not read to its end: only what is certainly in order may be returned.
        merged = [m for m in merged if entry_order(m.id) <= cutoff]
    page = merged[:limit]
    if len(merged) > limit or (len(page) == limit):
        return Page(page, page[-1].id)
    if cutoff is not None:
        return Page(page, f"{cutoff[0]}-{cutoff[1]}")
    return Page(page, None)
