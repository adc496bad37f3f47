"""The callback service's gunicorn worker: gunicorn's own asyncio (`asgi`) worker, plus one thing
it lacks — on SIGTERM, idle keep-alive connections are closed at once.

Centrifugo's Go client keeps up to 255 idle connections per node open to the callbacks, and the
stock worker waits for every open connection to finish before it exits: measured here, one idle
connection held a worker for the whole graceful timeout (20 s) on every restart or deploy.
gthread closed them at once; so does this. Requests in flight still finish (up to
GUNICORN_GRACEFUL_TIMEOUT), and their connections close after the answer.

Relies on gunicorn internals (the protocol's idle flag, its keep-alive close); gunicorn is pinned
in requirements.txt and tests/e2e/test_callback_worker.py checks the behaviour against the real
server.
"""

from __future__ import annotations

import weakref
from typing import Any

from gunicorn.asgi.protocol import ASGIProtocol  # type: ignore[import-untyped]
from gunicorn.workers import gasgi  # type: ignore[import-untyped]


class _TrackedProtocol(ASGIProtocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        connections = getattr(self.worker, "connections", None)
        if connections is not None:
            connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # A request refused before its body was read (realtime.request_body) leaves what gunicorn
        # had buffered of that body (up to 256 KB a connection) in its body receiver, which sits in
        # a reference cycle with this protocol: it stayed until a full garbage collection, and a
        # flood of refused 15 MB bodies grew RSS by ~14 MB a round. Nobody reads it now: drop it.
        receiver = self._body_receiver
        if receiver is not None:
            receiver._chunks.clear()
            receiver._buffered = 0


class CallbackWorker(gasgi.ASGIWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: weakref.WeakSet[Any] = weakref.WeakSet()

    def init_process(self) -> None:
        # The worker's serving loop builds each connection from this module attribute.
        gasgi.ASGIProtocol = _TrackedProtocol
        super().init_process()

    def handle_exit_signal(self) -> None:
        super().handle_exit_signal()
        self.loop.call_soon(self.close_idle_connections)

    def close_idle_connections(self) -> None:
        idle = [c for c in self.connections if c._awaiting_request and not c._closed]
        for connection in idle:
            connection._keepalive_timeout()  # closes the transport and ends its serving task
        if idle:
            self.log.info("closed %d idle keep-alive connections", len(idle))
