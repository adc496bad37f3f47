"""Calling the shipped ASGI application (realtime.asgi) in a test, the way gunicorn's asgi worker
does: one scope, the body, the response messages.

The event loop runs in a thread of its own, as in the worker. Inside a test's database
transaction there is one database connection, the test thread's, so `in_test_thread()` sends the
worker's blocking work (Django behind the WSGI bridge, refresh, history, loading the rules) to the
test's thread instead of the worker's pool, and keeps Django's per-request connection cleanup
away from the test's transaction, as Django's own test client does. The real pool is covered end
to end, through gunicorn (tests/e2e).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core import signals
from django.db import close_old_connections


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class _TestThread(concurrent.futures.Executor):
    """Work submitted from the event loop's thread, run by the test's thread (see asgi_request)."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]]]
        self.jobs = queue.Queue()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.jobs.put((future, functools.partial(fn, **kwargs), args))
        return future

    def serve_until(self, done: threading.Event) -> None:
        while not (done.is_set() and self.jobs.empty()):
            try:
                future, fn, args = self.jobs.get(timeout=0.005)
            except queue.Empty:
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # handed to the awaiting coroutine
                    future.set_exception(exc)


_test_thread = _TestThread()


@contextlib.contextmanager
def in_test_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from realtime import wsgi_bridge

    monkeypatch.setattr(wsgi_bridge, "_threads", lambda: _test_thread)
    monkeypatch.setattr(wsgi_bridge, "close_old_connections", lambda: None)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def asgi_request(
    path: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    app: Any = None,
    chunks: list[bytes] | None = None,
) -> Response:
    """One request through the ASGI app on a fresh event loop (its Redis connection closed after)."""
    from realtime.redis_async import close_async_redis

    if app is None:
        from realtime.asgi import application as app
    parts = chunks if chunks is not None else [body]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "server": ("127.0.0.1", 3000), "client": ("127.0.0.1", 40000),
        "headers": [(b"host", b"127.0.0.1:3000")]
        + [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()],
    }  # fmt: skip

    async def run() -> Response:
        messages = [
            {"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await asyncio.Event().wait()  # the client stays connected
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        try:
            await app(scope, receive, send)
        finally:
            await close_async_redis()
        start = next(m for m in sent if m["type"] == "http.response.start")
        out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        names = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
        return Response(start["status"], names, out)

    outcome: dict[str, Any] = {}
    done = threading.Event()

    def loop_thread() -> None:
        try:
            outcome["response"] = asyncio.run(run())
        except BaseException as exc:  # re-raised in the test thread
            outcome["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=loop_thread, name="event-loop")
    thread.start()
    _test_thread.serve_until(done)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    response: Response = outcome["response"]
    return response
