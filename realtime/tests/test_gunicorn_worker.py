"""The callback worker is uvicorn-worker's, configured only through its public CONFIG_KWARGS; the
behaviours it must keep (prompt close of idle connections on SIGTERM, bounded memory under refused
floods) are tested against the real server in tests/e2e/test_callback_worker.py and test_ingress.py."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
from gunicorn import glogging  # type: ignore[import-untyped]
from gunicorn.config import Config  # type: ignore[import-untyped]

from realtime.gunicorn_worker import CallbackWorker


def test_issue10_item2_the_worker_runs_uvloop_httptools_and_lifespan_with_gunicorns_keepalive(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The config module sets PROMETHEUS_MULTIPROC_DIR when it is unset: keep that out of this process.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    gunicorn_conf = importlib.import_module("realtime.gunicorn_conf")
    assert gunicorn_conf.worker_class == "realtime.gunicorn_worker.CallbackWorker"
    cfg = Config()
    cfg.set("keepalive", gunicorn_conf.keepalive)
    worker = CallbackWorker(
        age=1, ppid=os.getpid(), sockets=[], app=None, timeout=30, cfg=cfg, log=glogging.Logger(cfg)
    )
    config = worker.config
    assert (config.loop, config.http, config.lifespan) == ("uvloop", "httptools", "on")
    assert config.timeout_keep_alive == gunicorn_conf.keepalive  # longer than Go's 90 s idle timeout
    assert config.server_header is False
    assert config.proxy_headers is False  # X-Forwarded-For is realtime.client_ip's to judge
    config.app = lambda scope, receive, send: None
    config.load()  # resolves the loop and the parser: both are installed (requirements.txt)
    assert config.http_protocol_class.__module__ == "uvicorn.protocols.http.httptools_impl"
