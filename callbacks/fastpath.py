"""The hot proxy calls, served on the event loop in front of Django's request cycle.

Every publish and subscribe waits on a callback, so the callback service runs gunicorn's asyncio
(`asgi`) worker on uvloop, and `realtime.asgi` puts `ProxyFastPath` in front of Django:
a POST to `/centrifugo/{refresh,subscribe,sub_refresh,publish,rpc}` is answered here, with the
same view's decode and handler (the secret check, msgspec structs, rules, stream write, metrics
and request ids are shared, not copied); connect too when it carries a token or no session
cookie. Everything else — connect with a session cookie, the server API, /health, /metrics, the
admin — goes to Django's WSGI handler in a pool of threads (realtime.wsgi_bridge).

How each call runs (the view's `blocking` flag):
- subscribe, sub_refresh: pure CPU against the in-memory rules, on the loop;
- publish: its checks on the loop, then the stream write on the worker's auto-pipelined Redis
  connection (`realtime.redis_async`), awaited before the answer is sent;
- refresh (the session store) and rpc (history reads through redis-py): in the worker's thread
  pool, with Django's database-connection hygiene around each call.

Why: gunicorn's gthread worker with the WSGI version of this path did far fewer publishes/s at
several times the server CPU per publish, and the DRF view through Django's request cycle costs
several times this path's CPU per call. The figures, dated and with the command that produced
them: bench/RESULTS.md ("The callback server").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

from callbacks import protocol
from callbacks.base import TOO_BIG, CentrifugoProxyView, proxy_decode, secret_refusal
from callbacks.server_api import api_key_problem
from partitions.store import rules_store
from realtime.observability import flush_metrics, observe_callback, request_id
from realtime.redis_async import close_async_redis
from realtime.request_body import RETRY_AFTER, BodyRefused, declared_length, in_flight, limits, read_body
from realtime.wsgi_bridge import run_blocking, shutdown_threads

logger = logging.getLogger("callbacks")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_INTERNAL = protocol.error(100, "internal error")
_BAD_LENGTH = protocol.error(protocol.BAD_REQUEST, "bad request: invalid Content-Length")
_BUSY = protocol.error(
    protocol.STORE_UNAVAILABLE, "busy: too many request bytes in flight, retry later", temporary=True
)
_RULES_DOWN = protocol.error(protocol.STORE_UNAVAILABLE, "rules unavailable, retry later", temporary=True)
_JSON = (b"content-type", b"application/json")
_TO_DJANGO = 0  # _answer's "status" for: hand the request, whose body it returns, to Django
_GONE = -1  # the client went away: nothing to answer
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


class ProxyFastPath:
    def __init__(self, django_app: ASGIApp, extra: dict[str, CentrifugoProxyView] | None = None) -> None:
        from callbacks import views

        self.django_app = django_app
        self.views: dict[str, CentrifugoProxyView] = {
            f"/centrifugo/{view.kind}": view()
            for view in (views.RefreshView, views.SubscribeView, views.SubRefreshView, views.PublishView, views.RpcView)
        }
        # connect: answered here when it needs no session (a token, or no session cookie); a
        # session cookie goes on to Django's view with the body already read.
        self.connect = views.ConnectView()
        self.views["/centrifugo/connect"] = self.connect
        self.views.update(extra or {})  # bench/ adds its no-op publish here
        self.secret_header = settings.CENTRIFUGO_PROXY_SECRET_HEADER.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            view = self.views.get(path)
            if view is not None and scope["method"] == "POST":
                await self._serve(view, scope, receive, send)
                return
            if path == SERVER_API_PATH and scope["method"] == "POST":
                await self._server_api(scope, receive, send)
                return
        elif kind == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.django_app(scope, receive, send)

    async def _serve(self, view: CentrifugoProxyView, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
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
        token = request_id.set(rid or None)
        try:
            client = scope.get("client")
            # The secret before the body: a caller without it never has its body read.
            refused = secret_refusal(view, secret, client[0] if client else "")
            if refused is not None:
                status, body = refused
            elif length == -2:
                status, body = 200, _BAD_LENGTH
            else:
                status, body = await self._answer(view, scope, receive, length, cookie)
            rid = request_id.get() or ""
        finally:
            request_id.reset(token)
        if status == _TO_DJANGO:  # `body` is the request's: Django's view answers (and counts) it
            await self.django_app(scope, _replay(body, receive), send)
            return
        if status == _GONE:
            return
        observe_callback(view.kind, started, body, status)
        extra = [(b"x-request-id", rid.encode("latin-1"))] if rid else None
        await _respond(send, status, body, extra)

    async def _answer(
        self, view: CentrifugoProxyView, scope: Scope, receive: Receive, length: int, cookie: str
    ) -> tuple[int, bytes]:
        try:
            body = await read_body(receive, length=length, cap=limits().callback)
        except BodyRefused as exc:
            if exc.reason == BodyRefused.TOO_LARGE:
                return 200, TOO_BIG  # 200: the client gets error 106 (see proxy_decode)
            # 200, as for 106: Centrifugo turns any other status into error 100 for the client;
            # this way the client sees 1503, temporary, and its SDK retries.
            return (200, _BUSY) if exc.reason == BodyRefused.BUSY else (_GONE, b"")
        try:
            payload = proxy_decode(view, body)
            if isinstance(payload, tuple):
                return payload
            if view is self.connect:
                answer = self.connect.answer_without_session(payload, cookie)
                return (200, answer) if answer is not None else (_TO_DJANGO, body)
            if view.blocking:
                return 200, await run_blocking(view.handle, payload)
            if rules_store.needs_load:
                try:
                    await run_blocking(rules_store.current)
                except Exception:
                    logger.exception("%s: the rule set cannot be loaded", view.kind)
                    return 200, _RULES_DOWN
            return 200, await view.handle_async(payload)
        except Exception:
            # Django would turn this into a 500 too; say so in the protocol's shape and log it.
            logger.exception("%s: unexpected error", view.kind)
            return 500, _INTERNAL
        finally:
            # Handed back before Django gets a connect body: the bridge counts it again as it reads it.
            in_flight.release(len(body))

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
                await _respond(send, 413, TOO_BIG)
            elif exc.reason == BodyRefused.BUSY:
                await _respond(send, 503, _BUSY, [(b"retry-after", RETRY_AFTER)])
            return
        in_flight.release(len(body))  # the bridge counts it again as it reads it
        await self.django_app(scope, _replay(body, receive), send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Django's ASGI handler does not speak lifespan; the worker's Redis connection closes here."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await close_async_redis()
                flush_metrics()  # counts not yet written to the metric files
                shutdown_threads()
                await send({"type": "lifespan.shutdown.complete"})
                return
