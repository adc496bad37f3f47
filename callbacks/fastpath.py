"""The event-loop transport of the Centrifugo proxy calls, in front of Django's request cycle.

Every publish and subscribe waits on a callback, so the callback service runs gunicorn's asyncio
(`asgi`) worker on uvloop, and `realtime.asgi` puts `ProxyFastPath` in front of Django: a POST
to a route of callbacks/urls.py (one `proxy(...)` line a kind) is read here and answered by
callbacks.pipeline with the same handler the DRF view runs (secret, body limit, decode, handler,
metrics). This module adds only what an ASGI transport has to: reading the headers and the body
within bounds (realtime.request_body), the request id, and sending the answer. Everything else —
the server API (its key and size are checked here first), /health, /metrics, the admin, any
other view — goes to Django's WSGI handler in a pool of threads (realtime.wsgi_bridge).

How each call runs (the handler's `blocking` flag): subscribe, sub_refresh and connect with a
token or without a session cookie, on the loop (pure CPU against the in-memory rules); publish,
its checks on the loop, then the stream write on the worker's auto-pipelined Redis connection
(realtime.redis_async); refresh of a token connection, on the loop; refresh of a session
connection, connect with a session, rpc: in the worker's thread pool, with
Django's database-connection hygiene around each call. Measurements: bench/RESULTS.md
("The callback server").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.http.cookie import parse_cookie
from django.urls import URLPattern, URLResolver, get_resolver

from callbacks import pipeline, protocol
from callbacks.server_api import api_key_problem
from callbacks.views import CentrifugoProxyView
from realtime.observability import flush_metrics, request_id, request_id_of
from realtime.redis_async import close_async_redis
from realtime.request_body import RETRY_AFTER, BodyRefused, declared_length, in_flight, limits, read_body
from realtime.wsgi_bridge import shutdown_threads
from streams.reaper import start_reaper, stop_reaper
from streams.throughput import start_sampler, stop_sampler

logger = logging.getLogger("callbacks")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BAD_LENGTH = protocol.error(protocol.BAD_REQUEST, "bad request: invalid Content-Length")
_JSON = (b"content-type", b"application/json")
SERVER_API_PATH = "/api/publish"


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for an app that gets a request whose body was already read here."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _respond(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [_JSON, (b"content-length", b"%d" % len(body))]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def proxy_routes(patterns: Any = None, prefix: str = "/") -> dict[str, pipeline.Handler[Any]]:
    """path -> handler for every route of the URLconf answered by a `CentrifugoProxyView` (the
    `proxy(...)` lines of callbacks/urls.py): the one routing table both transports serve. A route
    whose view is another DRF view (an override) is left to Django."""
    routes: dict[str, pipeline.Handler[Any]] = {}
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = str(entry.pattern)
        if "<" in route or route.startswith("^"):
            continue  # only plain paths: a proxy endpoint is one fixed URL
        if isinstance(entry, URLResolver):
            for path, handler in proxy_routes(entry.url_patterns, prefix + route).items():
                routes.setdefault(path, handler)  # the first route Django would match wins, as there
        elif isinstance(entry, URLPattern):
            view = getattr(entry.callback, "view_class", None)
            found = getattr(entry.callback, "view_initkwargs", {}).get("handler") or getattr(view, "handler", None)
            if view is not None and issubclass(view, CentrifugoProxyView) and view.on_loop and found is not None:
                routes.setdefault(prefix + route, found)
    return routes


class ProxyFastPath:
    def __init__(self, django_app: ASGIApp) -> None:
        self.django_app = django_app
        self.handlers = proxy_routes()
        self.secret_header = settings.CENTRIFUGO_PROXY_SECRET_HEADER.lower().encode("latin-1")
        self.session_cookie = settings.SESSION_COOKIE_NAME

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            handler = self.handlers.get(path)
            if handler is not None and scope["method"] == "POST":
                await self._serve(handler, scope, receive, send)
                return
            if path == SERVER_API_PATH and scope["method"] == "POST":
                await self._server_api(scope, receive, send)
                return
        elif kind == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.django_app(scope, receive, send)

    async def _serve(self, handler: pipeline.Handler[Any], scope: Scope, receive: Receive, send: Send) -> None:
        started = pipeline.now()
        secret = rid = cookie = ""
        length = -1
        secret_header = self.secret_header
        for name, value in scope["headers"]:
            if name == secret_header:
                secret = value.decode("latin-1")
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -2
            elif name == b"x-request-id":
                rid = value.decode("latin-1")
            elif name == b"cookie":
                cookie = f"{cookie}; {value.decode('latin-1')}" if cookie else value.decode("latin-1")
        token = request_id.set(request_id_of(rid))
        try:
            client = scope.get("client")
            remote = client[0] if client else ""
            # The secret before the body: a caller without it never has its body read.
            refused = pipeline.refusal(handler, secret, remote)
            if refused is None and length == -2:
                refused = 200, _BAD_LENGTH
            if refused is not None:
                status, body = pipeline.refused(handler, started, *refused)
            else:
                call = pipeline.NO_CALL
                if cookie and handler.uses_session:
                    call = pipeline.Call(session_key=parse_cookie(cookie).get(self.session_cookie, ""))
                status, body = await pipeline.answer_async(handler, receive, length=length, call=call, started=started)
            rid = request_id.get() or ""
        finally:
            request_id.reset(token)
        if status == pipeline.GONE:
            return
        extra = [(b"x-request-id", rid.encode("latin-1"))] if rid else None
        await _respond(send, status, body, extra)

    async def _server_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`POST /api/publish`: the API key and the size are checked before the body is read,
        then the request goes on to Django's view (callbacks.server_api) with its body."""
        authorization = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
        problem = api_key_problem(authorization)
        if problem is not None:
            error = protocol.encode({"error": {"code": protocol.BAD_REQUEST, "message": problem}})
            await _respond(send, 401, error, [(b"www-authenticate", b"Api-Key")])
            return
        length = declared_length(scope["headers"])
        if length == -2:
            await _respond(send, 400, _BAD_LENGTH)
            return
        try:
            body = await read_body(receive, length=length, cap=limits().server_api)
        except BodyRefused as exc:
            if exc.reason == BodyRefused.TOO_LARGE:
                await _respond(send, 413, pipeline.TOO_BIG)
            elif exc.reason == BodyRefused.BUSY:
                await _respond(send, 503, pipeline.BUSY, [(b"retry-after", RETRY_AFTER)])
            return
        in_flight.release(len(body))  # the bridge counts it again as it reads it
        await self.django_app(scope, _replay(body, receive), send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Django's ASGI handler does not speak lifespan; the join/leave reaper (streams.reaper)
        and the throughput sampler (streams.throughput) start here, and stop with the worker's
        Redis connection."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                start_reaper()
                start_sampler()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await stop_reaper()
                await stop_sampler()
                await close_async_redis()
                flush_metrics()  # counts not yet written to the metric files
                shutdown_threads()
                await send({"type": "lifespan.shutdown.complete"})
                return
