"""Django's WSGI application served from the event loop by a pool of threads.

The callback workers are asyncio workers (see realtime.gunicorn_conf), but most of Django — the
connect callback (it reads the session cookie), the server API, the admin, /health, /metrics —
is synchronous and talks to the database. Django's own ASGI handler runs every such request in
one thread per process (asgiref's thread-sensitive mode) and adapts each middleware across it:
several times the CPU of the same request without middleware (bench/RESULTS.md). This
bridge runs Django's plain WSGI handler instead, once per request, in a pool of
CALLBACK_THREADS threads: one thread hop per request, several requests at once (as gthread
did), and Django's usual per-request database-connection handling.

The request body is read on the loop (realtime.request_body: at most Django's
DATA_UPLOAD_MAX_MEMORY_SIZE, refused by its Content-Length before anything is read, and counted
against the worker's BODY_BYTES_IN_FLIGHT until the answer is sent); the response is collected
in the thread and sent from the loop. Nothing here streams; no view of this project does.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from realtime.request_body import RETRY_AFTER, BodyRefused, declared_length, in_flight, limits, read_body

logger = logging.getLogger("realtime")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_pool: ThreadPoolExecutor | None = None


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(settings.CALLBACK_THREADS, thread_name_prefix="django")
    return _pool


async def run_blocking(function: Callable[..., Any], *args: Any) -> Any:
    """Run blocking work (the database, redis-py) off the event loop, in this worker's threads,
    with the caller's context (its request id) and Django's per-request connection hygiene."""

    def call() -> Any:
        close_old_connections()
        try:
            return function(*args)
        finally:
            close_old_connections()

    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_threads(), context.run, call)


def shutdown_threads() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False)
        _pool = None


class WsgiInThreads:
    def __init__(self, wsgi_app: WSGIApp) -> None:
        self.wsgi_app = wsgi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":  # Centrifugo holds the WebSockets, not this service
                await send({"type": "websocket.close", "code": 1008})
            return
        try:
            body = await read_body(receive, length=declared_length(scope.get("headers", ())), cap=limits().django)
        except BodyRefused as exc:
            if exc.reason == BodyRefused.TOO_LARGE:
                await _plain(send, 413, b"request body too large\n")
            elif exc.reason == BodyRefused.BUSY:
                await _plain(send, 503, b"busy: too many request bytes in flight, retry later\n", RETRY_AFTER)
            return  # GONE: the client went away before sending its body
        try:
            environ = _environ(scope, body)
            context = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            status, headers, answer = await loop.run_in_executor(_threads(), context.run, self._run, environ)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
        finally:
            in_flight.release(len(body))

    def _run(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., None]:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [(status, headers)]
            return _no_write

        result = self.wsgi_app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started[0]
        encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        if not any(name == b"content-length" for name, _ in encoded):
            # The whole body is here: say how long it is rather than let the server chunk it.
            encoded.append((b"content-length", b"%d" % len(body)))
        return int(status.split(" ", 1)[0]), encoded, body


def _no_write(data: bytes) -> None:
    raise NotImplementedError("the WSGI write() callable is not supported")


async def _plain(send: Send, status: int, body: bytes, retry_after: bytes = b"") -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]
    if retry_after:
        headers.append((b"retry-after", retry_after))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """PEP 3333's environ from an ASGI HTTP scope (the mapping in the ASGI spec's WSGI section)."""
    root = scope.get("root_path", "")
    path = scope["path"]
    if root and path.startswith(root):
        path = path[len(root) :]
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    for raw_name, raw_value in scope.get("headers", ()):
        if b"_" in raw_name:
            continue  # as gunicorn does: "X_Secret" must not pass for "X-Secret" (both HTTP_X_SECRET)
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
            continue
        if name == "CONTENT_LENGTH":
            continue  # the body was read whole: its real length is above
        key = f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ
