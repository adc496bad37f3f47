"""Starting and stopping real processes for tests. The process helpers themselves are the product's
(devcluster/procs.py, which `make cluster` uses too); this adds the ones only tests need."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from devcluster.procs import ROOT, Process, free_port, http_status, wait_for, which

__all__ = ["ROOT", "Process", "free_port", "http_status", "start_redis", "wait_for", "wait_port_closed", "which"]


def wait_port_closed(port: int, *, timeout: float) -> None:
    def closed() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) != 0

    wait_for(closed, timeout=timeout, what=f"port {port} to close")


def start_redis(tmp: Path, *, port: int | None = None, extra: tuple[str, ...] = ()) -> tuple[Process, int]:
    port = port or free_port()
    data = tmp / f"redis-{port}"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        which("redis-server", "/usr/bin/redis-server"),
        "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data),
        "--save", "", "--appendonly", "no", "--daemonize", "no", *extra,
    ]  # fmt: skip
    proc = Process(argv, env=os.environ, log=tmp / f"redis-{port}.log")
    import redis

    client = redis.Redis(port=port, socket_timeout=0.2)

    def ready() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_for(ready, timeout=10, what=f"redis on port {port}")
    except TimeoutError:
        proc.stop()
        raise
    finally:
        client.close()
    return proc, port
