"""How a stored message is shown to people (stream_tail, the admin): one line, bounded length."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from streams.reader import Message

PREVIEW_CHARS = 200


def iso_time(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_time(message: Message) -> str:
    """The writer's timestamp; else the time Redis assigned the entry (its id's milliseconds)."""
    return iso_time(message.ts or int(message.id.partition("-")[0]))


def preview(message: Message, limit: int = PREVIEW_CHARS) -> str:
    """The data on one line: JSON as published (line breaks between tokens become spaces; JSON
    strings cannot hold raw ones), binary as base64; cut at `limit` characters."""
    if message.binary:
        text = "b64:" + base64.b64encode(message.data[:limit]).decode()
    else:
        text = message.data.decode("utf-8", errors="replace")
        text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
