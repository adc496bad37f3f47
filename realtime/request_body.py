"""Reading a request body on the event loop, within bounds: a cap per endpoint, and a bound on
the bytes of request bodies one worker holds at once.

Why: the bridge used to buffer up to 16 MB per request before Django looked at the credentials;
80 parallel 15 MB `POST /api/publish` without an API key took two workers from ~95 MB to
763/863 MB of RSS, and they kept it (glibc does not give such memory back). Now the callers
check credentials and the declared Content-Length before reading anything (a refused body is
never read: gunicorn closes the connection after the answer instead of reading on), a chunked
body is counted as it arrives, and a body that would take this worker's bodies in flight past
BODY_BYTES_IN_FLIGHT is refused with a temporary 503 before it is read.

Used only from the worker's event loop (callbacks.fastpath, realtime.wsgi_bridge), so the count
needs no lock. The caller hands the body's bytes back (`release`) once its answer is sent.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

RETRY_AFTER = b"1"  # seconds, in the 503's Retry-After


class BodyRefused(Exception):
    """Why a body was not read: TOO_LARGE, BUSY or GONE (the client went away)."""

    TOO_LARGE = "too large"
    BUSY = "busy"
    GONE = "gone"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Limits:
    callback: int  # CALLBACK_MAX_BODY
    server_api: int  # SERVER_API_MAX_BODY
    django: int  # DATA_UPLOAD_MAX_MEMORY_SIZE
    in_flight: int  # BODY_BYTES_IN_FLIGHT


@functools.cache
def limits() -> Limits:
    """The settings, read once: each `settings.X` goes through Django's LazyObject (its cost:
    bench/RESULTS.md), and the publish path would read three of them per call."""
    return Limits(settings.CALLBACK_MAX_BODY, settings.SERVER_API_MAX_BODY, settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
                  settings.BODY_BYTES_IN_FLIGHT)  # fmt: skip


def _reload(*, setting: str, **kwargs: Any) -> None:  # tests override settings
    if setting in ("CALLBACK_MAX_BODY", "SERVER_API_MAX_BODY", "DATA_UPLOAD_MAX_MEMORY_SIZE", "BODY_BYTES_IN_FLIGHT"):
        limits.cache_clear()


setting_changed.connect(_reload)


class _InFlight:
    held = 0  # bytes of request bodies read or being read by this worker, not yet answered

    def take(self, size: int) -> bool:
        if self.held + size > limits().in_flight:
            return False
        self.held += size
        return True

    def release(self, size: int) -> None:
        self.held -= size


in_flight = _InFlight()


def declared_length(headers: Any) -> int:
    """The Content-Length header's value; -1 without one (chunked), -2 for a malformed one."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else -2
    return -1


async def read_body(receive: Receive, *, length: int, cap: int) -> bytes:
    """The whole body (its bytes counted in flight until `in_flight.release(len(body))`), or
    BodyRefused. `length` is the declared Content-Length (-1: none); a larger one than `cap` is
    refused before anything is read."""
    if length > cap:
        raise BodyRefused(BodyRefused.TOO_LARGE)
    taken = max(length, 0)
    if taken and not in_flight.take(taken):
        raise BodyRefused(BodyRefused.BUSY)
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise BodyRefused(BodyRefused.GONE)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > taken:  # no Content-Length (chunked): counted as it arrives
                if size > cap:
                    raise BodyRefused(BodyRefused.TOO_LARGE)
                if not in_flight.take(size - taken):
                    raise BodyRefused(BodyRefused.BUSY)
                taken = size
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
    except BaseException:
        in_flight.release(taken)
        raise
    if taken > size:  # shorter than declared: gunicorn's parser frames by Content-Length, but be exact
        in_flight.release(taken - size)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
