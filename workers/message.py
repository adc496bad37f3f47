"""The log entry a worker's handlers get: `streams.reader.Message`'s attributes, decoded on first
use instead of all at once.

A worker builds one per entry, and most handlers read two or three of its attributes: decoding
every field up front (four UTF-8 decodes, the JSON check behind `binary`, the `ts` parse) was a
third of the runner's own time per entry (bench/RESULTS.md, "Backend workers"). Here the runner
decodes what it needs itself (the id, the channel, the type) and the rest is read from the stored
fields when a handler asks; `typed()` gives the eager `streams.reader.Message`.
"""

from __future__ import annotations

import msgspec

from streams.payload import is_json_text
from streams.reader import Message as LogMessage
from streams.reader import message_from_entry, ts_from_field


class Message(msgspec.Struct, frozen=True, gc=False):
    """One log entry: `id`, `stream_key`, `channel`, `type` ("message", "join", "leave"), and, read
    from `fields` (the entry as stored) on each access, `user`, `client`, `data` (bytes), `binary`,
    `ts` (unix ms). Never raises, whatever the entry holds (as streams.reader.message_from_entry).
    gc=False: its fields are strings and a dict of bytes, so it is never part of a reference cycle."""

    stream_key: str
    id: str
    channel: str
    type: str
    fields: dict[bytes, bytes]

    @property
    def user(self) -> str:
        return self.fields.get(b"user", b"").decode(errors="replace")

    @property
    def client(self) -> str:
        return self.fields.get(b"client", b"").decode(errors="replace")

    @property
    def data(self) -> bytes:
        return self.fields.get(b"data", b"")

    @property
    def binary(self) -> bool:
        """True: data is not JSON text (stored enc=binary, or bytes that are not JSON)."""
        return self.fields.get(b"enc") == b"binary" or not is_json_text(self.data)

    @property
    def ts(self) -> int:
        return ts_from_field(self.fields.get(b"ts", b"0"))

    def json(self) -> object:
        """`data` decoded as JSON (msgspec.DecodeError for binary data)."""
        return msgspec.json.decode(self.data)

    def typed(self) -> LogMessage:
        """The same entry as the eager streams.reader.Message every other reader gets."""
        return message_from_entry(self.stream_key, self.id, self.fields)

    def as_json(self) -> dict[str, object]:
        return self.typed().as_json()


def message_of(stream_key: str, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Message:
    """An entry as read by XREADGROUP / XAUTOCLAIM (the runner inlines this on its hot path)."""
    kind = fields.get(b"type")
    return Message(
        stream_key,
        entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        fields.get(b"channel", b"").decode(errors="replace"),
        "message" if kind is None else kind.decode(errors="replace"),
        fields,
    )
