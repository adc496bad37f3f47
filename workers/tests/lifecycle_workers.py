"""A worker that records its channel lifecycle, for tests that run it as a `manage.py run_worker`
process. One line per handler start and end in RECORD_FILE (workers.tests.recording's format
rules): `<event> <worker> <channel> <detail>`, with ACTIVE_SLEEP / MESSAGE_SLEEP / INACTIVE_SLEEP
seconds of work inside the handler (between its start and end lines)."""

from __future__ import annotations

import os
import time
from typing import Any

from workers.sdk import Message, Who, Worker
from workers.tests.recording import _append


def _work(variable: str) -> None:
    if delay := float(os.environ.get(variable, "0")):
        time.sleep(delay)


class LifecycleRecorder(Worker):
    group = "life"
    streams = ["jobs"]

    def on_channel_active(self, channel: str, info: dict[str, Any]) -> None:
        _append(f"active {self.name} {channel} {info['entry_id']}\n")
        _work("ACTIVE_SLEEP")

    def on_message(self, channel: str, message: Message) -> None:
        seq = message.json()["seq"]
        _append(f"message-start {self.name} {channel} {seq}\n")
        _work("MESSAGE_SLEEP")
        _append(f"message {self.name} {channel} {seq}\n")

    def on_channel_inactive(self, channel: str, info: dict[str, Any]) -> None:
        _append(f"inactive-start {self.name} {channel} {info['last_activity_ms']}\n")
        _work("INACTIVE_SLEEP")
        _append(f"inactive {self.name} {channel} {time.time():.3f}\n")


class RoomRecorder(Worker):
    """Every handler of the `room:*` channels (tests/e2e: join/leave logged there), one line each:
    `<handler> <worker> <channel> <unix time>`."""

    group = "life-e2e"
    channels = ["room:*"]

    def on_channel_active(self, channel: str, info: dict[str, Any]) -> None:
        _append(f"active {self.name} {channel} {time.time():.3f} {info['by']}\n")

    def on_join(self, channel: str, who: Who) -> None:
        _append(f"join {self.name} {channel} {time.time():.3f} {who.user}\n")

    def on_message(self, channel: str, message: Message) -> None:
        _append(f"message {self.name} {channel} {time.time():.3f} {message.user}\n")

    def on_leave(self, channel: str, who: Who) -> None:
        # The entry id's milliseconds: the lifecycle's clock (workers.lifecycle), not the `ts` field
        # the reaper's script wrote (Redis's TIME at the script's start, which can be a ms earlier).
        _append(f"leave {self.name} {channel} {time.time():.3f} {who.user} {who.entry_id.partition('-')[0]}\n")

    def on_channel_inactive(self, channel: str, info: dict[str, Any]) -> None:
        _append(f"inactive {self.name} {channel} {time.time():.3f} {info['last_activity_ms']}\n")
