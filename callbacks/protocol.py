"""Centrifugo v6 HTTP proxy messages, as typed structs, and the replies we send back.

msgspec decodes and validates a request body in one pass (and says precisely what was wrong), and
`msgspec.Raw` keeps the publication's `data` as the exact JSON bytes Centrifugo sent — what the
stream stores — without a parse/re-serialise round trip.
"""

from __future__ import annotations

from typing import Annotated, Any, NewType

import msgspec

Channel = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class ProxyRequest(msgspec.Struct, kw_only=True):
    # Fields Centrifugo sends on every proxy request; unknown fields (newer Centrifugo) are ignored.
    client: str = ""
    transport: str = ""
    protocol: str = ""
    encoding: str = ""


class ConnectRequest(ProxyRequest, kw_only=True):
    data: msgspec.Raw = msgspec.Raw()
    b64data: str = ""
    name: str = ""
    version: str = ""
    channels: list[str] = []


class UserRequest(ProxyRequest, kw_only=True):
    # On every call of an established connection: its user and the meta the connect answer set.
    user: str = ""
    meta: msgspec.Raw = msgspec.Raw()


class RefreshRequest(UserRequest, kw_only=True):
    pass


class SubRefreshRequest(UserRequest, kw_only=True):
    channel: Channel


class ChannelDataRequest(SubRefreshRequest, kw_only=True):
    # The client's data: as JSON, or base64 (`b64data`) with the proxy's binary_encoding.
    data: msgspec.Raw = msgspec.Raw()
    b64data: str = ""


class SubscribeRequest(ChannelDataRequest, kw_only=True):
    token: str = ""


class PublishRequest(ChannelDataRequest, kw_only=True):
    pass


class RpcRequest(UserRequest, kw_only=True):
    method: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    data: msgspec.Raw = msgspec.Raw()
    b64data: str = ""


class ConnectionMeta(msgspec.Struct, kw_only=True):
    """What this gateway keeps in a connection's meta (never shown to clients)."""

    roles: list[str] = []
    auth: str = ""  # "token" | "session" | "jwt" (verified by Centrifugo) | "" (anonymous)
    sid: str = ""  # Django session key, for re-checking a cookie-authenticated connection
    # Display name, set at connect (callbacks.enrichment): any JSON, so a token whose meta has a
    # `name` of another type keeps its roles; only a string is used.
    name: Any = None
    # The token's, for a token connection (control.access: revocation by jti, or by user and iat).
    # Set by the connect proxy for a token in the connect data (jti "" when the token has none),
    # and carried in the `meta` claim of the connection tokens this gateway issues (Centrifugo
    # verifies those itself). `exp`: when the token expires (0: never), for the refresh proxy.
    jti: str | None = None
    iat: int | None = None
    exp: int | None = None


class ConnectData(msgspec.Struct, kw_only=True):
    token: str = ""


# Error codes. Centrifugo's own where one fits; 1000+ for this gateway's.
PERMISSION_DENIED = 103
LIMIT_EXCEEDED = 106
BAD_REQUEST = 107
METHOD_NOT_FOUND = 104
TOO_MANY_REQUESTS = 111
IDEMPOTENCY_KEY_REUSED = 1409  # the publisher's key already stored a different publication (permanent)
STORE_UNAVAILABLE = 1503  # temporary; NOT "not stored": the write's outcome is unknown

DISCONNECT_INVALID_TOKEN = 4501
DISCONNECT_TOKEN_EXPIRED = 4502
DISCONNECT_UNAUTHORIZED = 4503

_encode = msgspec.json.Encoder().encode
_decode_meta = msgspec.json.Decoder(ConnectionMeta).decode


# What a handler answers: one of the protocol's three reply shapes, already encoded. Only the three
# constructors below make one (mypy holds every handler to it), so a handler cannot answer bytes of
# another shape; the transports send it as it is (no second encode on the hot path).
Reply = NewType("Reply", bytes)


def result(body: dict[str, Any] | None = None) -> Reply:
    return Reply(_encode({"result": body or {}}))


def error(code: int, message: str, *, temporary: bool = False) -> Reply:
    body: dict[str, Any] = {"code": code, "message": message}
    if temporary:
        body["temporary"] = True
    return Reply(_encode({"error": body}))


def disconnect(code: int, reason: str) -> Reply:
    return Reply(_encode({"disconnect": {"code": code, "reason": reason}}))


def encode(value: Any) -> bytes:
    return _encode(value)


def connection_meta(raw: msgspec.Raw) -> ConnectionMeta:
    """The connection's meta; anything unreadable counts as none (no roles), never as an error."""
    if not raw:
        return ConnectionMeta()
    try:
        return _decode_meta(raw)
    except (ValueError, RecursionError):  # msgspec's errors, invalid UTF-8, nesting
        return ConnectionMeta()


DENIED = error(PERMISSION_DENIED, "permission denied")
EMPTY_RESULT = result()
