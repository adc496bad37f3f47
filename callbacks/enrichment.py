"""Trusted enrichment (issue 12): on a channel whose rule sets `enrich`, subscribers receive the
publication wrapped in fields the server sets and the client cannot forge:

    {"data": <the client's payload, byte for byte>,
     "sender": {"user": "42", "client": "<connection id>", "name": "Ann" | null},
     "time": 1764576000123, "id": "1764576000123-0"}

- `sender.user` and `sender.client` are what Centrifugo says about the connection (the publish
  proxy request's `user` and `client`), never anything from the payload: a payload with its own
  "user" or "sender" keeps it inside "data".
- `sender.name` is the connection's display name, fixed when it connected, carried in its meta
  (which clients never see) because Centrifugo v6.9.1 sends the publish proxy `user`, `client`
  and `meta` but not the connection info: a token's `info.name` (the connect proxy copies it into
  meta; `issue_connection_token --info` puts it in the token's meta too, for JWTs Centrifugo
  verifies itself), else the token's `meta.name`, else the Django user's full name or username
  (session connections), else null.
- `id` is the entry id in the message log (the publication's tags carry its `stream`); null when
  the partition rule stores nothing. `time` is that id's milliseconds (Redis's clock: the same value
  on an idempotent retry), or the gateway's clock when nothing was stored.

The envelope is the publish proxy's `result.data`, which replaces what Centrifugo broadcasts and
keeps in its history; the message log keeps the client's payload as it was sent. Binary
publications are refused on such channels (107): the envelope is JSON.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from streams.writer import Appended

BINARY_REFUSED = "this channel wraps publications in a JSON envelope (enrich): publish JSON, not binary data"

_encode = msgspec.json.Encoder().encode


def envelope(*, data: bytes, user: str, client: str, name: Any, appended: Appended | None) -> bytes:
    """The enriched publication; `data` is the client's JSON as it was accepted (never re-encoded)."""
    entry_id = appended.entry_id if appended is not None else None
    at = int(entry_id.partition("-")[0]) if entry_id else int(time.time() * 1000)
    sender = {"user": user, "client": client, "name": name if isinstance(name, str) else None}
    return _encode({"data": msgspec.Raw(data), "sender": sender, "time": at, "id": entry_id})


def name_in_info(info: Any) -> str | None:
    """The display name in a connection's info (a token's `info`): its `name`, when a string."""
    if isinstance(info, dict):
        name = info.get("name")
        if isinstance(name, str):
            return name
    return None


def user_display_name(user: Any) -> str:
    """A Django user's name as others see it: the full name, else the username."""
    return str(user.get_full_name() or user.get_username())
