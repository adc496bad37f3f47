"""One way through for every Centrifugo proxy call, whatever carries it (the DRF view in
callbacks.views, the event-loop transport in callbacks.fastpath):

    the secret (before the body) -> the body's size -> its JSON (callbacks.json_checks) -> the
    request struct -> the handler -> the metrics -> (HTTP status, reply body)

A transport reads the headers and the body its own way (the ASGI one within CALLBACK_MAX_BODY
before reading) and hands here the secret, the body and a `Call`; a `Handler` gets the decoded,
typed request struct and that `Call` (never a transport's request object) and returns a
`protocol.Reply`, which only protocol.result / error / disconnect make (mypy holds every handler to
it). The request id is the transport's to set (the
DRF path's RequestIdMiddleware and fastpath both through realtime.observability.request_id_of,
one cap). Adding a proxy kind is
one `Handler` subclass and one `proxy(...)` line in callbacks/urls.py: both transports read that
routing table.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any, ClassVar, Generic, TypeVar

import msgspec
from django.conf import settings

from callbacks import protocol
from callbacks.json_checks import DECODE_ERRORS, json_problem
from partitions.store import rules_store
from realtime.observability import observe_callback
from realtime.request_body import BodyRefused, Receive, in_flight, limits, read_body
from realtime.wsgi_bridge import run_blocking

logger = logging.getLogger("callbacks")

NO_SECRET = protocol.error(protocol.BAD_REQUEST, "missing or wrong proxy secret")
TOO_BIG = protocol.error(protocol.LIMIT_EXCEEDED, "request body too large")
INTERNAL = protocol.error(100, "internal error")
RULES_DOWN = protocol.error(protocol.STORE_UNAVAILABLE, "rules unavailable, retry later", temporary=True)
BUSY = protocol.error(protocol.STORE_UNAVAILABLE, "busy: too many request bytes in flight, retry later", temporary=True)
GONE = -1  # answer_async's status when the client went away: nothing to answer

now = time.perf_counter  # when a call started, for its duration metric

P = TypeVar("P", bound=msgspec.Struct)


class Call:
    """What a handler may know of the call besides its body: the session key of the Cookie
    header Centrifugo forwards (for handlers that set `uses_session`; "" without one)."""

    __slots__ = ("session_key",)

    def __init__(self, *, session_key: str = "") -> None:
        self.session_key = session_key


NO_CALL = Call()  # a call with nothing besides its body: most of them, shared


class Handler(Generic[P]):
    """One proxy kind: its request struct, and what it answers.

    `blocking` says how the event-loop transport runs `handle`: False, on the loop (it must do no
    blocking I/O; override `handle_async` for awaited I/O); True, in the worker's thread pool
    (the database, redis-py)."""

    kind: ClassVar[str]
    request_type: ClassVar[type[msgspec.Struct]]
    blocking: ClassVar[bool] = False
    uses_session: ClassVar[bool] = False  # the transport extracts Call.session_key only for these
    decode: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "request_type" in cls.__dict__:
            cls.decode = staticmethod(msgspec.json.Decoder(cls.request_type).decode)

    def handle(self, payload: P, call: Call) -> protocol.Reply:
        raise NotImplementedError

    async def handle_async(self, payload: P, call: Call) -> protocol.Reply:
        if self.blocking:
            return await run_blocking(self.handle, payload, call)
        return self.handle(payload, call)


def secret_ok(secret: str) -> bool:
    return hmac.compare_digest(secret.encode(), settings.CENTRIFUGO_PROXY_SECRET.encode())


def refusal(handler: Handler[Any], secret: str, remote: str) -> tuple[int, bytes] | None:
    """(401, reply) for a call without the proxy secret, checked before the body is read."""
    if secret_ok(secret):
        return None
    # Centrifugo never sends a wrong secret; someone else is calling. Change nothing.
    logger.warning("%s: rejected a call without the proxy secret from %s", handler.kind, remote)
    return 401, NO_SECRET


def decode(handler: Handler[Any], body: bytes) -> Any:
    """The decoded request struct, or (200, error reply).

    A body we refuse is answered 200 with error 107 (106 for a body over CALLBACK_MAX_BODY), not
    400: Centrifugo turns any non-200 answer into error 100 "internal", which is temporary, so
    the client's SDK would retry it forever; the protocol's error reaches the client as it is."""
    if len(body) > limits().callback:
        return 200, TOO_BIG
    problem = json_problem(body)
    if problem is not None:
        return 200, protocol.error(protocol.BAD_REQUEST, problem)
    try:
        return handler.decode(body)
    except DECODE_ERRORS as exc:
        return 200, protocol.error(protocol.BAD_REQUEST, f"bad request: {exc}")


def refused(handler: Handler[Any], started: float, status: int, reply: bytes) -> tuple[int, bytes]:
    """A call refused before its body was decoded (no secret, too large, busy), counted."""
    observe_callback(handler.kind, started, reply, status)
    return status, reply


def answer(handler: Handler[Any], body: bytes, call: Call, *, started: float) -> tuple[int, bytes]:
    """(HTTP status, reply) for a call whose secret passed, blocking (a thread: the DRF view)."""
    payload = decode(handler, body)
    status, reply = payload if isinstance(payload, tuple) else (200, handler.handle(payload, call))
    observe_callback(handler.kind, started, reply, status)
    return status, reply


async def answer_async(
    handler: Handler[Any], receive: Receive, *, length: int, call: Call, started: float
) -> tuple[int, bytes]:
    """`answer` on the event loop (an ASGI transport), reading the body first: `length` is the
    declared Content-Length (-1: none), refused over CALLBACK_MAX_BODY before anything is read,
    and the body is counted in this worker's bytes in flight until answered. The handler runs on
    the loop, or in the worker's threads (`blocking`). GONE: the client went away."""
    try:
        body = await read_body(receive, length=length, cap=limits().callback)
    except BodyRefused as exc:
        if exc.reason == BodyRefused.GONE:
            return GONE, b""
        # 200: the client gets error 106, or 1503 (temporary: its SDK retries); Centrifugo
        # turns any other status into error 100 for the client (see `decode`).
        return refused(handler, started, 200, TOO_BIG if exc.reason == BodyRefused.TOO_LARGE else BUSY)
    try:
        payload = decode(handler, body)
        if isinstance(payload, tuple):
            status, reply = payload
        else:
            try:
                if not handler.blocking and rules_store.needs_load and not await _rules_loaded(handler):
                    status, reply = 200, RULES_DOWN
                else:
                    status, reply = 200, await handler.handle_async(payload, call)
            except Exception:
                # Django answers a view's exception with a 500 too; here it is in the protocol's shape.
                logger.exception("%s: unexpected error", handler.kind)
                status, reply = 500, INTERNAL
        observe_callback(handler.kind, started, reply, status)
        return status, reply
    finally:
        in_flight.release(len(body))


async def _rules_loaded(handler: Handler[Any]) -> bool:
    """Loads the rule set off the loop (a worker whose start-up preload failed); False: it cannot."""
    try:
        await run_blocking(rules_store.current)
    except Exception:
        logger.exception("%s: the rule set cannot be loaded", handler.kind)
        return False
    return True
