"""Workers the tests run, in-process or in real `manage.py run_worker` processes.

RecordingWorker appends one line per handler start and end to RECORD_FILE (one O_APPEND write,
so a kill never leaves half a line): `S|E <worker> <channel> <seq> <entry id> <monotonic ns>`;
`seq` is the publication's {"seq": n}. HANDLER_SLEEP seconds of work between the two.
"""

from __future__ import annotations

import os
import time

from workers.examples import EchoWorker
from workers.sdk import Message, Worker


class RecordingWorker(Worker):
    group = "rec"
    streams = ["jobs"]

    def on_message(self, channel: str, message: Message) -> None:
        seq = message.json()["seq"]
        _append(f"S {self.name} {channel} {seq} {message.id} {time.monotonic_ns()}\n")
        if delay := float(os.environ.get("HANDLER_SLEEP", "0")):
            time.sleep(delay)
        _append(f"E {self.name} {channel} {seq} {message.id} {time.monotonic_ns()}\n")


def _append(line: str) -> None:
    fd = os.open(os.environ["RECORD_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class ChatEcho(EchoWorker):
    """The example worker on the `chat` namespace the shipped Centrifugo config has (tests/e2e)."""

    group = "echo-e2e"
    channels = ["chat:echo*"]
