"""What the long-running stream commands (tail, consume) share: a Redis client whose timeout fits a
blocking read, and SIGTERM/SIGINT trapping so a process manager can stop them cleanly."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from realtime.redis import Client, connect, location


def blocking_redis(*, block_ms: int) -> Client:
    """A client of its own: the app's shared client times out after REDIS_SOCKET_TIMEOUT (0.25 s),
    which would cut every `XREAD BLOCK` short. Built like the shared one (any REDIS_URL kind, no
    silent retries: the loops handle errors)."""
    return connect(location(), socket_timeout=block_ms / 1000 + 5, connect_timeout=5, health_check_interval=30)


@contextmanager
def on_stop_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Calls `stop()` on SIGTERM or SIGINT (Ctrl-C) instead of dying mid-message; restores the
    previous handlers on exit. Off the main thread (which alone may install handlers) a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
