"""Metrics and log context for the callback service.

Metrics (Prometheus, GET /metrics on the callback port; keep it internal like Centrifugo's):
  gateway_callbacks_total{kind, outcome}        outcome: result | error | disconnect | bad_request | unauthorized
  gateway_callback_seconds{kind}                 latency of the whole view, parse to answer
  gateway_stream_writes_total{result}           ok | duplicate | conflict | error
  gateway_rules_version                          the rule-set version this process serves (max over processes)

Under gunicorn every worker is a process: prometheus_client's multiprocess mode (a directory of
mmap files, PROMETHEUS_MULTIPROC_DIR, prepared by realtime.gunicorn_conf) lets /metrics add them
up. Each request id lives in a context variable so every log line of a request carries it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess

from realtime import histogram_cells

CALLBACKS = Counter("gateway_callbacks_total", "Centrifugo proxy callbacks answered", ["kind", "outcome"])
CALLBACK_SECONDS = Histogram(
    "gateway_callback_seconds",
    "Time to answer a Centrifugo proxy callback",
    ["kind"],
    buckets=(0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0),
)
STREAM_WRITES = Counter("gateway_stream_writes_total", "Appends to the message log", ["result"])
RULES_VERSION = Gauge("gateway_rules_version", "Rule-set version served", multiprocess_mode="max")

_OUTCOMES = {ord("r"): "result", ord("e"): "error", ord("d"): "disconnect"}

# --- the hot path's metrics -------------------------------------------------------------------
# In multiprocess mode every increment is a locked write to an mmap file: observing a callback
# (a counter and a histogram) cost a clear share of a worker's throughput (bench/RESULTS.md).
# On an event loop (the callback workers' fast path) counts and timings are therefore added up in
# memory and written to the metric files at most once per METRICS_FLUSH_SECONDS, and at worker
# shutdown (realtime.asgi's lifespan). Anywhere else (Django's threads, commands) they are
# written at once. Scrapes see the loop's numbers up to a second late.
METRICS_FLUSH_SECONDS = 1.0

# Labelled children, looked up once: labels() costs a few microseconds per call.
_counted: dict[tuple[str, str], Any] = {}
_timed: dict[str, Any] = {}
_writes: dict[str, Any] = {}

# Pending on the loop (touched only by the event loop's thread).
_pending_calls: dict[tuple[str, str], int] = {}
_pending_times: dict[str, list[Any]] = {}  # kind -> [sum of seconds, [count per bucket]]
_pending_writes: dict[str, int] = {}
_flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on

# A second's observations are added at once through realtime.histogram_cells, the one module that
# touches prometheus_client's private histogram cells (a test pins the version it was checked on).
_BOUNDS: list[float] = histogram_cells.bucket_bounds(CALLBACK_SECONDS)  # ends with +Inf


def observe_callback(kind: str, started: float, body: bytes, status: int, *, now: float | None = None) -> None:
    """Count one answered callback and its duration (`now` defaults to the current perf_counter)."""
    elapsed = (time.perf_counter() if now is None else now) - started
    if status == 200:
        # Replies are {"result"...}, {"error"...} or {"disconnect"...}: the 3rd byte tells which.
        outcome = _OUTCOMES.get(body[2], "result") if len(body) > 2 else "result"
    else:
        outcome = "unauthorized" if status == 401 else "busy" if status == 503 else "bad_request"
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _calls(kind, outcome).inc()
        _timing(kind).observe(elapsed)
        return
    key = (kind, outcome)
    _pending_calls[key] = _pending_calls.get(key, 0) + 1
    timing = _pending_times.get(kind)
    if timing is None:
        timing = _pending_times[kind] = [0.0, [0] * len(_BOUNDS)]
    timing[0] += elapsed
    timing[1][bisect.bisect_left(_BOUNDS, elapsed)] += 1  # the first bound >= elapsed, as observe()
    _flush_soon(loop)


def count_stream_write(result: str) -> None:
    """gateway_stream_writes_total{result}: ok | duplicate | conflict | error (batched on a loop, as above)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _stream_writes(result).inc()
        return
    _pending_writes[result] = _pending_writes.get(result, 0) + 1
    _flush_soon(loop)


def _flush_soon(loop: asyncio.AbstractEventLoop) -> None:
    global _flush_on
    if _flush_on is not loop:  # none scheduled, or on a loop that has ended since (tests)
        _flush_on = loop
        loop.call_later(METRICS_FLUSH_SECONDS, flush_metrics)


def flush_metrics() -> None:
    """Write what the loop has counted to the metric files."""
    global _flush_on
    _flush_on = None
    calls, times, writes = dict(_pending_calls), dict(_pending_times), dict(_pending_writes)
    _pending_calls.clear()
    _pending_times.clear()
    _pending_writes.clear()
    for (kind, outcome), count in calls.items():
        _calls(kind, outcome).inc(count)
    for kind, (total, buckets) in times.items():
        histogram_cells.add_observations(_timing(kind), total, buckets)
    for result, count in writes.items():
        _stream_writes(result).inc(count)


def _calls(kind: str, outcome: str) -> Any:
    counter = _counted.get((kind, outcome))
    if counter is None:
        counter = _counted[kind, outcome] = CALLBACKS.labels(kind, outcome)
    return counter


def _timing(kind: str) -> Any:
    histogram = _timed.get(kind)
    if histogram is None:
        histogram = _timed[kind] = CALLBACK_SECONDS.labels(kind)
    return histogram


def _stream_writes(result: str) -> Any:
    counter = _writes.get(result)
    if counter is None:
        counter = _writes[result] = STREAM_WRITES.labels(result)
    return counter


def metrics_view(request: HttpRequest) -> HttpResponse:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        data = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        data = generate_latest(REGISTRY)
    return HttpResponse(data, content_type=CONTENT_TYPE_LATEST)


# --- request ids for logs ---------------------------------------------------------------------
# "" outside any request (start-up, the rules watcher); None inside one until an id is needed.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default="")
REQUEST_ID_MAX = 64  # characters of an incoming X-Request-Id kept (logs, the answer's header)


def request_id_of(header: str) -> str | None:
    """The request id kept from an incoming X-Request-Id (None: make one when something logs).
    Every transport's one cap: the DRF path's RequestIdMiddleware and the event-loop transport."""
    return header[:REQUEST_ID_MAX] if header else None


def current_request_id() -> str:
    """The id of the request being served, made on first use (most requests never log)."""
    value = request_id.get()
    if value is None:
        value = uuid.uuid4().hex[:16]
        request_id.set(value)
    return value or "-"


class RequestIdMiddleware:
    """Takes X-Request-Id from a proxy in front (nginx) or makes one when something logs; the
    response carries it back whenever one exists."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = request_id.set(request_id_of(request.META.get("HTTP_X_REQUEST_ID", "")))
        try:
            response = self.get_response(request)
            value = request_id.get()
            if value:
                response["X-Request-Id"] = value
            return response
        finally:
            request_id.reset(token)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC), level, logger, message, request_id, pid, exception."""

    converter = time.gmtime  # type: ignore[assignment]

    def format(self, record: logging.LogRecord) -> str:
        import msgspec

        body = {
            "ts": f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "pid": record.process,
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(body).decode()
