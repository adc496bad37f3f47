"""POST /api/publish: publishing for backend services.

The message takes the same path as a client's: rules, size and schema checks, one write to the
log (`callbacks.publishing`), and then Centrifugo's HTTP API broadcasts it with the stream id in
its tags. If the broadcast fails after the write, the answer says so (502, temporary) and a
retry with the same idempotency key stores nothing new and broadcasts once.

    curl -X POST http://gateway:3000/api/publish \\
      -H "Authorization: Api-Key $GATEWAY_API_KEY" -H "Idempotency-Key: order-17" \\
      -d '{"channel": "chat:room1", "data": {"text": "hi"}}'
"""

from __future__ import annotations

import hmac
import http.client
import logging
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from django.conf import settings
from django.http import HttpResponse
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.views import APIView

from callbacks import protocol
from callbacks.enrichment import envelope
from callbacks.json_checks import DECODE_ERRORS, json_problem
from callbacks.publishing import MAX_IDEMPOTENCY_KEY, Rejected, publication_accept

logger = logging.getLogger("callbacks")

# 422 for a reused Idempotency-Key, as the IETF Idempotency-Key draft suggests.
STATUS_FOR = {protocol.PERMISSION_DENIED: 403, protocol.BAD_REQUEST: 400, protocol.LIMIT_EXCEEDED: 413,
              protocol.TOO_MANY_REQUESTS: 429, protocol.IDEMPOTENCY_KEY_REUSED: 422, protocol.CHANNEL_CLOSED: 403,
              protocol.STORE_UNAVAILABLE: 503}  # fmt: skip
BROADCAST_FAILED = 1502
SERVER_API_CLIENT = "server-api"  # the `client` of its publications, in the log and enriched ones


class PublishBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    channel: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    data: msgspec.Raw
    idempotency_key: Annotated[str, msgspec.Meta(max_length=MAX_IDEMPOTENCY_KEY)] = ""


_decode_body = msgspec.json.Decoder(PublishBody).decode


def api_key_problem(header: str) -> str | None:
    """Why `Authorization: <header>` does not admit a caller, or None. Checked by the ASGI layer
    (callbacks.fastpath) before the body is read, and by the DRF view below."""
    scheme, _, key = header.partition(" ")
    if scheme != ApiKeyAuthentication.keyword or not key:
        return f"send 'Authorization: {ApiKeyAuthentication.keyword} <key>'"
    expected = settings.GATEWAY_API_KEY
    if not expected:
        return "the server API is disabled: GATEWAY_API_KEY is not set"
    if not hmac.compare_digest(key.encode(), expected.encode()):
        return "wrong API key"
    return None


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key <key>`, compared in constant time with GATEWAY_API_KEY."""

    keyword = "Api-Key"

    def authenticate(self, request: Request) -> tuple[Any, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        problem = api_key_problem(header)
        if problem is not None:
            raise exceptions.AuthenticationFailed(problem)
        return (settings.SERVER_API_USER, header.partition(" ")[2])

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def api_response(body: dict[str, Any], status: int) -> HttpResponse:
    return HttpResponse(protocol.encode(body), content_type="application/json", status=status)


class CentrifugoUnavailable(Exception):
    pass


# One keep-alive connection to Centrifugo per thread, reused while it was used within the last
# REUSE_SECONDS: far inside any server idle timeout, so a reused connection is not one the server
# has just closed (a POST on such a connection could not be told apart from a lost answer, and is
# never retried). Reusing them is most of the server API's throughput (bench/RESULTS.md).
REUSE_SECONDS = 5.0
_connections = threading.local()


def _centrifugo_connection(host: str, port: int) -> http.client.HTTPConnection:
    held: tuple[http.client.HTTPConnection, str, int, float] | None = getattr(_connections, "held", None)
    if held is not None:
        connection, held_host, held_port, used = held
        if (held_host, held_port) == (host, port) and time.monotonic() - used < REUSE_SECONDS:
            return connection
        connection.close()
    return http.client.HTTPConnection(host, port, timeout=2)


def centrifugo_call(method: str, body: dict[str, Any]) -> dict[str, Any]:
    """One call of Centrifugo's HTTP server API (`POST /api/<method>`): its whole answer, `result` or
    `error` (Centrifugo answers its own errors with 200). Raises CentrifugoUnavailable when there is
    no answer: connection refused or lost, a timeout, a status other than 200 (a wrong key is 401)."""
    url = urlsplit(settings.CENTRIFUGO_API_URL)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    connection = _centrifugo_connection(host, port)
    _connections.held = None
    try:
        connection.request("POST", f"{url.path.rstrip('/')}/api/{method}", protocol.encode(body),
                           {"Content-Type": "application/json", "X-API-Key": settings.CENTRIFUGO_API_KEY})  # fmt: skip
        response = connection.getresponse()
        payload = response.read()
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise CentrifugoUnavailable(f"{type(exc).__name__}: {exc}") from exc
    if response.will_close:
        connection.close()
    else:
        _connections.held = (connection, host, port, time.monotonic())
    if response.status != 200:
        raise CentrifugoUnavailable(f"HTTP {response.status}: {payload[:200]!r}")
    try:
        answer = msgspec.json.decode(payload)
    except msgspec.DecodeError as exc:
        raise CentrifugoUnavailable(f"unreadable answer: {payload[:200]!r}") from exc
    if not isinstance(answer, dict):
        raise CentrifugoUnavailable(f"unreadable answer: {payload[:200]!r}")
    return answer


def centrifugo_publish(*, channel: str, data: bytes, tags: dict[str, str], idempotency_key: str) -> dict[str, Any]:
    """Centrifugo's HTTP server API `publish`; raises CentrifugoUnavailable on any failure."""
    body: dict[str, Any] = {"channel": channel, "data": msgspec.Raw(data), "tags": tags}
    if idempotency_key:
        body["idempotency_key"] = idempotency_key
    answer = centrifugo_call("publish", body)
    if "error" in answer:
        raise CentrifugoUnavailable(f"error {answer['error']}")
    return dict(answer.get("result", {}))


class BroadcastFailed(Exception):
    """Stored in the log (`tags` say where) but Centrifugo did not broadcast it: a retry with the same
    idempotency key stores nothing new and broadcasts once."""

    def __init__(self, message: str, tags: dict[str, str]) -> None:
        super().__init__(message)
        self.tags = tags


@dataclass(frozen=True, slots=True)
class Published:
    tags: dict[str, str]  # stream, stream_id, partition (empty when the rule does not store)
    duplicate: bool  # an earlier publish with the same idempotency key stored it
    broadcast: dict[str, Any]  # Centrifugo's answer


def server_publish(
    *, channel: str, data: bytes, idempotency: str, client: str = SERVER_API_CLIENT
) -> Published | Rejected:
    """A server publication: the rules and the log (`publication_accept`, as SERVER_API_USER with
    SERVER_API_ROLES), then Centrifugo's broadcast — of the enrich envelope where the channel rule
    asks for it (callbacks.enrichment; sender: SERVER_API_USER and `client`). The server API and the
    worker SDK's `publish`. Raises BroadcastFailed when stored but not broadcast."""
    outcome = publication_accept(
        channel=channel, user=settings.SERVER_API_USER, client=client, roles=settings.SERVER_API_ROLES,
        data=data, idempotency=idempotency,
    )  # fmt: skip
    if isinstance(outcome, Rejected):
        return outcome
    tags = outcome.tags()
    if outcome.enrich:  # subscribers of the channel get the same envelope as from a client
        data = envelope(data=data, user=settings.SERVER_API_USER, client=client, name=None, appended=outcome.appended)
    try:
        broadcast = centrifugo_publish(channel=channel, data=data, tags=tags, idempotency_key=outcome.broadcast_key)
    except CentrifugoUnavailable as exc:
        raise BroadcastFailed(str(exc), tags) from exc
    return Published(tags, bool(outcome.appended and outcome.appended.duplicate), broadcast)


class ServerApiView(APIView):
    """A view of the server API: `Authorization: Api-Key`, and every error in the protocol's shape
    `{"error": {"code", "message"}}` (401 with `WWW-Authenticate: Api-Key` for a missing or wrong key)."""

    authentication_classes = (ApiKeyAuthentication,)
    permission_classes = ()
    throttle_classes = ()

    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]
        if isinstance(exc, exceptions.APIException):
            response = api_response(
                {"error": {"code": protocol.BAD_REQUEST, "message": str(exc.detail)}}, exc.status_code
            )
            if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                response.status_code = 401
                response["WWW-Authenticate"] = ApiKeyAuthentication.keyword
            return response
        raise exc


class PublishApiView(ServerApiView):
    def post(self, request: Request) -> HttpResponse:
        raw = request.body
        if len(raw) > settings.SERVER_API_MAX_BODY:
            return api_response({"error": {"code": protocol.LIMIT_EXCEEDED, "message": "request body too large"}}, 413)
        problem = json_problem(raw)
        if problem is not None:
            return api_response({"error": {"code": protocol.BAD_REQUEST, "message": problem}}, 400)
        try:
            body = _decode_body(raw)
        except DECODE_ERRORS as exc:
            return api_response({"error": {"code": protocol.BAD_REQUEST, "message": f"bad request: {exc}"}}, 400)
        idempotency = request.META.get("HTTP_IDEMPOTENCY_KEY", "") or body.idempotency_key
        if len(idempotency) > MAX_IDEMPOTENCY_KEY:
            return api_response(
                {"error": {"code": protocol.BAD_REQUEST, "message": "Idempotency-Key is too long"}}, 400
            )
        try:
            outcome = server_publish(channel=body.channel, data=bytes(body.data), idempotency=idempotency)
        except BroadcastFailed as exc:
            logger.error("server publish stored but not broadcast: channel=%r %s: %s", body.channel, exc.tags, exc)
            message = (
                "stored but not broadcast; retry with the same idempotency key"
                if idempotency
                else ("stored but not broadcast; a retry without an idempotency key would store it again")
            )
            return api_response(
                {"error": {"code": BROADCAST_FAILED, "message": message, "temporary": True}, "tags": exc.tags}, 502
            )
        if isinstance(outcome, Rejected):
            error = {"code": outcome.code, "message": outcome.message, "temporary": outcome.temporary}
            return api_response({"error": error}, STATUS_FOR.get(outcome.code, 400))
        result = {**outcome.tags, "duplicate": outcome.duplicate, "centrifugo": outcome.broadcast}
        return api_response({"result": result}, 200)
