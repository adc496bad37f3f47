"""gunicorn settings for the callback service (`gunicorn -c python:realtime.gunicorn_conf`).

Why an asyncio worker (uvicorn-worker's, on uvloop with the httptools parser: realtime.gunicorn_worker;
it measured ahead of gunicorn's own `asgi` worker, README Performance): every publish waits on a
callback, and most of a callback's cost was the HTTP server, not our code: gthread, 2 workers
x 4 threads, with our best WSGI fast path did far fewer publishes/s than an asyncio worker at
several times the server CPU per publish (bench/RESULTS.md, "The callback server"). It answers on
an event loop, keeps idle connections for free (Centrifugo's Go client keeps up to 255 open per
host), and lets one worker's concurrent publishes share one Redis write (realtime.redis_async).
Django (connect, the admin, the server API) runs in a thread pool of CALLBACK_THREADS per worker
(realtime.wsgi_bridge).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from realtime.env import setting_bool, setting_int, setting_str

bind = f"{setting_str('BIND_ADDRESS')}:{setting_int('PORT')}"
# One event loop per core.
workers = setting_int("WEB_CONCURRENCY", os.cpu_count() or 2)
worker_class = "realtime.gunicorn_worker.CallbackWorker"  # uvicorn-worker; loop, parser and lifespan set there
# Longer than Go's idle-connection timeout (90 s), so Centrifugo, not gunicorn, closes idle
# connections: a POST on a connection the server has just closed would fail, not be retried.
keepalive = setting_int("GUNICORN_KEEPALIVE")
timeout = 30
graceful_timeout = setting_int("GUNICORN_GRACEFUL_TIMEOUT")
worker_connections = 1000  # read by gunicorn's own workers only; uvicorn sets no connection limit
# One listening socket per worker (SO_REUSEPORT) so the kernel spreads connections evenly. With a
# shared socket, keep-alive connections stay with whichever worker accepted them first: bench/ saw
# 30-32 of 32 connections on one of two workers, i.e. one GIL doing all the work.
reuse_port = True
preload_app = True  # import Django once; nothing touches the database or Redis at import
accesslog = "-" if setting_bool("ACCESS_LOG") else None
errorlog = "-"
loglevel = setting_str("LOG_LEVEL").lower()
proc_name = "realtime-callbacks"
# supervisord is the process manager; gunicorn's own control socket (default under $HOME) is not used.
control_socket_disable = True


# Metrics from every worker process, added up by /metrics (prometheus_client multiprocess mode).
# Set before the app is imported, which is when prometheus_client reads it.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-")
_metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_starting(server: Any) -> None:
    """A fresh metrics directory per start: old workers' files would count twice."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def post_worker_init(worker: Any) -> None:
    """Load the rule set (and start its watcher) before the first request, not during it."""
    from partitions.store import rules_store

    try:
        rules_store.current()
    except Exception:  # the database may still be starting; the first request retries
        worker.log.warning("rules not loaded at worker start", exc_info=True)
