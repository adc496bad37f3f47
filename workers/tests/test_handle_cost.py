"""What the runner does per entry (issue 12's throughput goal, bench.workers): it builds nothing a
handler does not read, and sets the publish context once per batch, not once per entry. Counted,
not timed: the timing is bench.workers' (README "Backend workers")."""

from __future__ import annotations

import time
from typing import Any

import pytest

from streams import payload
from workers import message as message_module
from workers import sdk
from workers.leases import Lease
from workers.partition import Owned
from workers.runner import NoLifecycle, Runner
from workers.sdk import Message, Worker

KEY = "rtgw:stream:{jobs:0}"


class Channels(Worker):
    group = "g"

    def __init__(self, *, name: str) -> None:
        super().__init__(name=name)
        self.got: list[tuple[str, str, str]] = []

    def on_message(self, channel: str, message: Message) -> None:
        self.got.append((channel, message.id, message.type))  # reads neither data nor user nor ts


class NoRedis:
    def register_script(self, script: str) -> Any:
        return lambda **kwargs: 0


class CountingVar:
    """Stands in for sdk._current and counts its set() calls."""

    def __init__(self) -> None:
        self.sets = 0
        self._value: Any = None

    def get(self) -> Any:
        return self._value

    def set(self, value: Any) -> Any:
        self.sets += 1
        previous, self._value = self._value, value
        return previous

    def reset(self, token: Any) -> None:
        self._value = token


def test_issue12_item1_the_runner_decodes_only_what_handlers_read_and_sets_the_context_once_per_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[bytes] = []

    def counting_is_json_text(data: bytes) -> bool:
        checked.append(data)
        return payload.is_json_text(data)

    monkeypatch.setattr("streams.reader.is_json_text", counting_is_json_text)
    monkeypatch.setattr(message_module, "is_json_text", counting_is_json_text)
    var = CountingVar()
    monkeypatch.setattr(sdk, "_current", var)
    worker = Channels(name="w")
    runner = Runner(worker, client=NoRedis(), keys=[KEY], lease_seconds=6, max_deliveries=5)  # type: ignore[arg-type]
    acked: list[bytes] = []
    monkeypatch.setattr(runner._leases, "ack", lambda lease, ids: acked.extend(ids) or len(ids))
    entries = [
        (f"1700000000{i:03d}-0".encode(), {b"channel": f"chat:{i % 3}".encode(), b"user": b"u", b"data": b"{}"})
        for i in range(100)
    ]
    owned = Owned(
        Lease(KEY, "g", "w 1", time.monotonic() + 60), NoLifecycle(NoRedis(), key=KEY, group="g", idle_seconds=1)
    )  # type: ignore[arg-type]

    runner._work.handle(owned, entries)

    assert worker.got == [(f"chat:{i % 3}", f"1700000000{i:03d}-0", "message") for i in range(100)]
    assert acked == [entry_id for entry_id, _ in entries]
    assert runner.counts.handled == 100
    assert checked == []  # the JSON check behind `binary` runs only when a handler asks
    assert var.sets == 1  # one publish context for the batch
    [(_, first)] = entries[:1]
    message = message_module.message_of(KEY, entries[0][0], first)
    assert (message.user, message.client, message.data, message.binary, message.ts) == ("u", "", b"{}", False, 0)
    assert checked == [b"{}"]
    assert message.typed() == message_module.message_from_entry(KEY, entries[0][0], first)
