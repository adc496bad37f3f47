"""GET /api/channels/<channel>/presence and /presence_stats: who is in a channel now, for backends.

Answered from Centrifugo's server API (`presence`, `presence_stats`), so with the Redis engine it
counts the clients of every node. The key and the error shape are POST /api/publish's
(callbacks.server_api): `Authorization: Api-Key $GATEWAY_API_KEY`, `{"error": {"code", "message"}}`.

    curl -H "Authorization: Api-Key $GATEWAY_API_KEY" \\
      http://gateway:3000/api/channels/chat:room%231/presence

The channel is the rest of the path before `/presence`, percent-decoded once by the server: send
its UTF-8 bytes percent-encoded where a URL needs it (`#` as %23, `%` as %25, `?` as %3F); `:`,
`$` and `/` may go as they are. What is refused (400) before Centrifugo is asked, each a channel no
client can be subscribed to: an empty name, one that is not ASCII (Centrifugo's rule without a
channel_regex), longer than 255 characters (its channel.max_length), with control characters (NUL
would put it in a Centrifugo namespace that does not exist), and one no channel rule matches.
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from django.http import HttpResponse
from rest_framework.request import Request

from callbacks import protocol
from callbacks.enrichment import name_in_info
from callbacks.server_api import CentrifugoUnavailable, ServerApiView, api_response, centrifugo_call
from partitions.rules import Action
from partitions.store import rules_store

UNKNOWN_CHANNEL = 102  # Centrifugo's own code: a channel nobody can subscribe to
NOT_AVAILABLE = 108  # Centrifugo's own code: presence is off for the channel
CENTRIFUGO_UNAVAILABLE = 1504  # temporary: Centrifugo's server API did not answer
MAX_CHANNEL_BYTES = 255  # Centrifugo's channel.max_length default


class ChannelConverter:
    """`<channel:...>` in a URL pattern: the rest of the path, any character ('/' and control
    characters included: Django's `path` stops at a newline, and a 404 page would hide the reason)."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class Refused(Exception):
    def __init__(self, status: int, code: int, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.temporary = status, code, message, temporary

    def response(self) -> HttpResponse:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.temporary:
            error["temporary"] = True
        return api_response({"error": error}, self.status)


NOT_ASCII = "channel is not ASCII: Centrifugo lets clients subscribe to ASCII channel names only"


def channel_problem(channel: str, path_info: str = "") -> str | None:
    """Why `channel` cannot have presence, as a client error, or None. `path_info`: the request's
    PATH_INFO (WSGI: its bytes as latin-1), where bytes that are not UTF-8 are still visible
    (Django re-percent-encodes them in the channel it decodes: '%FF' would become 'chat:%FF')."""
    if not channel:
        return "channel is empty"
    if not channel.isascii() or not path_info.isascii():
        # centrifugo/config.json sets no channel_regex, so Centrifugo takes ASCII names only
        # (internal/client/handler.go, validChannelName): no client is subscribed to another.
        return NOT_ASCII
    if len(channel) > MAX_CHANNEL_BYTES:
        return f"channel is longer than {MAX_CHANNEL_BYTES} characters"
    if any(c < " " or c == "\x7f" for c in channel):
        return "channel contains control characters"
    return None


def _check_channel(request: Request, channel: str) -> None:
    problem = channel_problem(channel, request.META.get("PATH_INFO", ""))
    if problem is not None:
        raise Refused(400, protocol.BAD_REQUEST, f"{problem}: {channel!r}")
    try:
        rule = rules_store.current().decide(Action.SUBSCRIBE, channel=channel, user="").rule
    except DatabaseError:
        raise Refused(503, protocol.STORE_UNAVAILABLE, "rules unavailable, retry later", temporary=True) from None
    if rule is None:
        raise Refused(400, UNKNOWN_CHANNEL, f"unknown channel {channel!r}: no channel rule matches it")
    if rule.overrides.get("presence") is False:
        raise Refused(404, NOT_AVAILABLE, f"presence is off for {channel!r}: {rule.label()} sets presence: false")


def _ask_centrifugo(method: str, channel: str) -> dict[str, Any]:
    """`result` of Centrifugo's `method` for `channel`, or Refused with the status that fits its error."""
    try:
        answer = centrifugo_call(method, {"channel": channel})
    except CentrifugoUnavailable as exc:
        raise Refused(503, CENTRIFUGO_UNAVAILABLE, f"Centrifugo is unavailable: {exc}", temporary=True) from None
    error = answer.get("error")
    if error is None:
        return dict(answer.get("result") or {})
    code, message = error.get("code"), error.get("message", "")
    if code == NOT_AVAILABLE:
        raise Refused(404, NOT_AVAILABLE, f"presence is not enabled for {channel!r} in Centrifugo's configuration")
    if code == UNKNOWN_CHANNEL:
        raise Refused(400, UNKNOWN_CHANNEL, f"unknown channel {channel!r} (Centrifugo: {message})")
    if code == protocol.BAD_REQUEST:
        raise Refused(400, protocol.BAD_REQUEST, f"Centrifugo refused the channel {channel!r}: {message}")
    # 100 internal (e.g. Centrifugo lost its Redis engine): worth a retry.
    raise Refused(503, CENTRIFUGO_UNAVAILABLE, f"Centrifugo answered error {code}: {message}", temporary=True)


def _member(info: dict[str, Any]) -> dict[str, Any]:
    member = {
        "user": info.get("user", ""),
        "client": info.get("client", ""),
        "name": name_in_info(info.get("conn_info")),
    }
    for key in ("conn_info", "chan_info"):  # as Centrifugo returns them: absent when not set
        if key in info:
            member[key] = info[key]
    return member


class PresenceView(ServerApiView):
    """Every client subscribed to the channel now, by client id, as Centrifugo's `presence` has them."""

    def get(self, request: Request, channel: str) -> HttpResponse:
        try:
            _check_channel(request, channel)
            result = _ask_centrifugo("presence", channel)
        except Refused as refused:
            return refused.response()
        presence = {client: _member(info) for client, info in (result.get("presence") or {}).items()}
        return api_response({"result": {"channel": channel, "presence": presence}}, 200)


class PresenceStatsView(ServerApiView):
    """How many clients and distinct users are subscribed to the channel now."""

    def get(self, request: Request, channel: str) -> HttpResponse:
        try:
            _check_channel(request, channel)
            result = _ask_centrifugo("presence_stats", channel)
        except Refused as refused:
            return refused.response()
        stats = {
            "channel": channel,
            "num_clients": result.get("num_clients", 0),
            "num_users": result.get("num_users", 0),
        }
        return api_response({"result": stats}, 200)
