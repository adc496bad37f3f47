"""Following the log live (`manage.py stream_tail`): XREAD BLOCK over every partition key at once
(on a Redis Cluster: streams.multiread).

Starting "at the end" resolves each key's newest id once, up front, instead of passing `$` on every
read: `$` means "newest when this call arrives", so an entry written between two reads to a key the
first read did not return would be skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase

from realtime.redis import Client
from streams.display import message_time, preview
from streams.multiread import read_streams
from streams.reader import Message, entry_order, message_from_entry


def start_positions(client: Client, keys: Sequence[str], since: str | None) -> dict[str, str]:
    """Per key, the id to read after: `since`, else the newest entry (0-0 for an empty key)."""
    if since is not None:
        return dict.fromkeys(keys, since)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.xrevrange(key, count=1)
    newest = pipe.execute()
    return {key: rows[0][0].decode() if rows else "0-0" for key, rows in zip(keys, newest, strict=True)}


def format_line(message: Message) -> str:
    fields = (
        message_time(message),
        message.stream_key,
        message.id,
        message.channel or "-",
        message.user or "-",
        preview(message),
    )
    return " ".join(fields)


class Tail:
    def __init__(self, *, client: Client, positions: dict[str, str], pattern: str = "*", block_ms: int = 500) -> None:
        self._client = client
        self._positions = dict(positions)
        self._pattern = pattern
        self._block_ms = block_ms
        self._stopping = False

    def stop(self) -> None:
        """Safe from a signal handler: the loop ends after the current read (at most block_ms)."""
        self._stopping = True

    def follow(self) -> Iterator[Message]:
        """Messages whose channel matches the pattern, in entry-id order within each read."""
        while not self._stopping:
            reply = read_streams(self._client, self._positions, count=100, block_ms=self._block_ms)
            batch: list[Message] = []
            for raw_key, entries in reply:
                key = raw_key.decode()
                for entry_id, fields in entries:
                    batch.append(message_from_entry(key, entry_id, fields))
                self._positions[key] = batch[-1].id
            batch.sort(key=lambda m: entry_order(m.id))
            for message in batch:
                if fnmatchcase(message.channel, self._pattern):
                    yield message
