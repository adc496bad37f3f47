"""RPC methods clients call through Centrifugo's RPC proxy.

`history`: a channel's stored messages since an id or a time, paginated, for a user the channel's
subscribe rule admits. The request data:

    {"channel": "chat:room1", "since": "<entry id>"}     # after this id (exclusive)
    {"channel": "chat:room1", "since_ms": 1700000000000} # at or after this server time
    {"channel": "chat:room1", "cursor": "<next_cursor>", "limit": 100}

The result: {"messages": [{"id", "stream", "channel", "user", "ts", "data" | "b64data"}...],
"next_cursor": "<id>" | null}.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Annotated

import msgspec

from callbacks import protocol
from callbacks.json_checks import DECODE_ERRORS
from partitions.rules import Action, closure_of
from partitions.store import rules_store
from realtime.redis import REDIS_ERRORS
from streams.reader import MAX_LIMIT, channel_history

logger = logging.getLogger("callbacks")

EntryId = Annotated[str, msgspec.Meta(pattern=r"^\d{1,20}-\d{1,20}$")]


class HistoryParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    channel: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    since: EntryId | None = None
    since_ms: Annotated[int, msgspec.Meta(ge=0)] | None = None
    cursor: EntryId | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = 100


_decode_history = msgspec.json.Decoder(HistoryParams).decode


def history(*, user: str, roles: Sequence[str], data: bytes) -> protocol.Reply:
    try:
        params = _decode_history(data or b"{}")
    except DECODE_ERRORS as exc:  # any bytes: binary RPC data, too deep, not UTF-8
        return protocol.error(protocol.BAD_REQUEST, f"bad history request: {exc}")
    decision = rules_store.current().decide(Action.SUBSCRIBE, channel=params.channel, user=user, roles=roles)
    if not decision.allowed:
        logger.info("history denied: user=%r channel=%r: %s", user, params.channel, decision.reason)
        closure = closure_of(decision)
        if closure is not None:  # closed for subscribe, so for reading its log too
            return protocol.error(protocol.CHANNEL_CLOSED, closure.message())
        return protocol.DENIED
    try:
        page = channel_history(
            params.channel, since_id=params.since, since_ms=params.since_ms, cursor=params.cursor, limit=params.limit
        )
    except REDIS_ERRORS as exc:
        logger.error("history unavailable: channel=%r: %s", params.channel, exc)
        return protocol.error(protocol.STORE_UNAVAILABLE, "message store unavailable, retry later", temporary=True)
    return protocol.result(
        {"data": {"messages": [m.as_json() for m in page.messages], "next_cursor": page.next_cursor}}
    )


METHODS: dict[str, Callable[..., protocol.Reply]] = {"history": history}
