"""Handlers the consumer tests run in a real `manage.py stream_consume` process."""

from __future__ import annotations

import os
import time

from streams.reader import Message


def record(message: Message) -> None:
    """Appends "<key> <id>" to STARTED_FILE (if set), works for HANDLER_SLEEP seconds, then appends
    it to HANDLED_FILE."""
    line = f"{message.stream_key} {message.id}\n".encode()
    if started := os.environ.get("STARTED_FILE"):
        _append(started, line)
    time.sleep(float(os.environ.get("HANDLER_SLEEP", "0")))
    _append(os.environ["HANDLED_FILE"], line)


def _append(path: str, line: bytes) -> None:
    # One write on an O_APPEND descriptor: a kill never leaves half a line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
