"""Per-request CPU cost of the callback stack without any HTTP server: the ASGI application that
gunicorn serves (bench.gateway.asgi: realtime.asgi's fast path plus the bench routes) awaited in a
loop on uvloop with a prepared scope. What gunicorn and sockets add is then the difference to the
HTTP figures. Part of `--tuning`.

Run as `python -m bench.inprocess PATH...` in a process whose environment names the settings
(bench.gateway.settings; BENCH_MIDDLEWARE=false for the variant without middleware); it prints one
JSON object: {path: median microseconds of CPU per request}.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from bench.targets import ROOT, Context

# (label, path, through Django?, what it is)
VARIANTS = (
    ("publish", "/centrifugo/publish", False, "as shipped: the ASGI fast path, handle_async(), XADD"),
    ("publish-noop", "/centrifugo/publish-noop", False, "the fast path, decode + rule decision, no XADD"),
    ("publish-drf", "/centrifugo/publish-drf", True, "the DRF view (PublishHandler) through Django's request cycle"),
    ("publish-plain", "/centrifugo/publish-plain", True, "the same answer in a plain Django function view"),
)


def _scope(path: str, body: bytes, secret: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "server": ("127.0.0.1", 3000),
        "client": ("127.0.0.1", 40000),
        "headers": [
            (b"host", b"127.0.0.1:3000"),
            (b"user-agent", b"Go-http-client/1.1"),  # what Centrifugo sends
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            (b"x-centrifugo-proxy-secret", secret.encode()),
            (b"accept-encoding", b"gzip"),
        ],
    }


def _caller(path: str, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    from bench.callbacks import publish_body
    from bench.gateway.asgi import application as app

    body, secret = publish_body(), os.environ["CENTRIFUGO_PROXY_SECRET"]
    statuses: list[int] = []
    request = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> dict[str, Any]:
        if not received:
            received.append(True)
            return request
        await asyncio.Event().wait()  # no disconnect: Django's listener waits here until cancelled
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    received: list[bool] = []

    def call() -> None:
        received.clear()
        loop.run_until_complete(app(_scope(path, body, secret), receive, send))

    call()
    if statuses[-1] != 200:
        raise RuntimeError(f"{path} answered {statuses[-1]}")
    return call


def measure(paths: Iterable[str], *, rounds: int = 9, calls: int = 400) -> dict[str, float]:
    """Median CPU microseconds per request for each path; the paths interleave round by round."""
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    callers = {path: _caller(path, loop) for path in paths}
    for call in callers.values():  # warm caches, connections, the script SHA
        for _ in range(200):
            call()
    samples: dict[str, list[float]] = {path: [] for path in callers}
    gc.collect()
    for _ in range(rounds):
        for path, call in callers.items():
            started = time.process_time()
            for _ in range(calls):
                call()
            samples[path].append((time.process_time() - started) / calls * 1e6)
    return {path: round(statistics.median(values), 1) for path, values in samples.items()}


def run(ctx: Context) -> dict[str, Any]:
    """Both middleware variants, each in its own process (Django is configured once per process)."""
    results: dict[str, Any] = {}
    for middleware in (True, False):
        env = {
            **ctx.gateway_env("bench.gateway.settings"),
            "BENCH_MIDDLEWARE": "true" if middleware else "false",
            "RULES_WATCH": "false",  # no poller thread taking the GIL mid-sample
            "LOG_LEVEL": "WARNING",
        }
        # Without middleware only the views Django serves change.
        paths = [path for _, path, django, _ in VARIANTS if middleware or django]
        argv = [str(ctx.venv_bin / "python"), "-m", "bench.inprocess", *paths]
        out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"bench.inprocess failed:\n{out.stderr[-3000:]}")
        per_path = json.loads(out.stdout.strip().splitlines()[-1])
        key = "with_middleware" if middleware else "without_middleware"
        results[key] = {label: per_path[path] for label, path, _, _ in VARIANTS if path in per_path}
    return results


def table(results: dict[str, Any]) -> str:
    base = results["with_middleware"]["publish"]
    head = f"{'variant':<16} {'middleware':<10} {'cpu us/req':>10} {'vs publish':>10}  what"
    lines = [head, "-" * (len(head) + 50)]
    for key, label in (("with_middleware", "shipped"), ("without_middleware", "none")):
        for name, _, _, what in VARIANTS:
            if name in results[key]:
                us = results[key][name]
                lines.append(f"{name:<16} {label:<10} {us:>10.0f} {us / base:>9.2f}x  {what}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1:])))
