"""The worker SDK: subclass `Worker`, declare what it reads, write handlers.

    from workers.sdk import Message, Who, Worker

    class Assistant(Worker):
        group = "assistant"            # the worker group: its processes share the partitions
        streams = ["default"]          # streams to read (partitions from the rules); [] = all
        channels = ["chat:*"]          # glob patterns; other channels' entries are skipped (acked)

        def on_message(self, channel: str, message: Message) -> None:
            if message.json().get("text") == "ping":
                self.publish(channel, {"text": "pong"})

Handlers may be `def` or `async def`. A handler that raises leaves the entry unacknowledged and
it is retried (then dead-lettered after WORKER_MAX_DELIVERIES tries): make handlers idempotent,
an entry may be handled twice after a crash (README "Backend workers"). Run with
`manage.py run_worker pkg.module.Assistant`.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec

from workers.message import Message

__all__ = ["Message", "PublishError", "Who", "Worker"]


@dataclass(frozen=True, slots=True)
class Who:
    """Who joined or left: `info` is the connection info at join (or None), `reason` of a leave is
    "unsubscribe", "disconnect" or "gone" ("" for a join). `entry_id` is the log entry's id."""

    user: str
    client: str
    info: Any
    reason: str
    entry_id: str
    ts: int


class PublishError(Exception):
    """The rules refused the publication (`code`, `temporary` as in the server API), or it was
    stored but not broadcast (`temporary`: retry; with the same idempotency key it is stored once)."""

    def __init__(self, message: str, *, code: int, temporary: bool) -> None:
        super().__init__(message)
        self.code = code
        self.temporary = temporary


@dataclass(slots=True)
class Current:
    """The entry being handled in this thread (or task): publish() derives its default idempotency
    key from it, so a handler re-run after a crash publishes nothing twice. One per batch: the
    runner only points `message` at each entry in turn (None while a lifecycle event runs)."""

    message: Any = None
    ranked: Any = None  # the message `rank` counts the publishes of
    rank: int = 0


_current: contextvars.ContextVar[Current | None] = contextvars.ContextVar("entry", default=None)


class Worker:
    """Subclass and override the handlers you need; the defaults do nothing."""

    group: ClassVar[str] = ""  # required: the worker group (= the Redis consumer group) name
    streams: ClassVar[list[str]] = []  # stream names; empty: every stream the rules write
    channels: ClassVar[list[str]] = ["*"]
    # A channel with no message and no member this long is inactive; None: WORKER_CHANNEL_IDLE_SECONDS.
    idle_seconds: ClassVar[float | None] = None
    batch: ClassVar[int] = 100  # entries read per partition at once

    def __init__(self, *, name: str) -> None:
        self.name = name  # the consumer name in the group; unique among the group's live workers

    # --- handlers -----------------------------------------------------------------------------
    def on_channel_active(self, channel: str, info: dict[str, Any]) -> Any:
        pass

    def on_message(self, channel: str, message: Message) -> Any:
        pass

    def on_channel_inactive(self, channel: str, info: dict[str, Any]) -> Any:
        pass

    def on_join(self, channel: str, who: Who) -> Any:
        pass

    def on_leave(self, channel: str, who: Who) -> Any:
        pass

    # --- acting -------------------------------------------------------------------------------
    def publish(self, channel: str, data: Any, *, idempotency_key: str | None = None) -> dict[str, str]:
        """Publish as the server does (POST /api/publish): the channel rules as SERVER_API_USER,
        one entry in the log, Centrifugo's broadcast. Returns the tags (stream, stream_id, partition).

        Idempotent on retry: without `idempotency_key`, a publish made while handling an entry is
        keyed on that entry and the publish's rank within the handler call, so the same handler
        re-run after a crash stores and broadcasts nothing twice (within IDEMPOTENCY_WINDOW)."""
        from callbacks.publishing import Rejected
        from callbacks.server_api import BroadcastFailed, server_publish

        raw = bytes(data) if isinstance(data, bytes | bytearray) else msgspec.json.encode(data)
        if idempotency_key is None:
            current = _current.get()
            entry = None if current is None else current.message
            if entry is not None and current is not None:
                if current.ranked is not entry:
                    current.ranked, current.rank = entry, 0
                current.rank += 1
                tag = entry.stream_key.rpartition("{")[2].rstrip("}")
                idempotency_key = f"w:{entry.id}:{current.rank}:{tag}"
        try:
            outcome = server_publish(
                channel=channel, data=raw, idempotency=idempotency_key or "", client=f"worker:{self.name}"
            )
        except BroadcastFailed as exc:
            raise PublishError(f"stored but not broadcast: {exc}", code=1502, temporary=True) from exc
        if isinstance(outcome, Rejected):
            raise PublishError(outcome.message, code=outcome.code, temporary=outcome.temporary)
        return outcome.tags


Call = Callable[..., Any]


class Dispatch:
    """Calls one Worker's handlers, sync or async (an async one runs on this thread's own event loop)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._local = threading.local()
        # The common case, a plain `def on_message`: the runner calls it directly for a message
        # entry, without looking at its result (None when on_message is async).
        self.on_message_sync = None if inspect.iscoroutinefunction(worker.on_message) else worker.on_message

    @contextmanager
    def handling(self) -> Iterator[Current]:
        """The scope of a batch of entries: point `current.message` at each before its handler."""
        current = Current()
        token = _current.set(current)
        try:
            yield current
        finally:
            _current.reset(token)

    def message(self, message: Message, current: Current | None = None) -> None:
        """The handler of `message`'s type; `current`: the batch's, from handling() (None: its own)."""
        if current is None:
            with self.handling() as current:
                self.message(message, current)
            return
        current.message = message
        if message.type == "message":
            self._call(self.worker.on_message, message.channel, message)
        elif message.type in ("join", "leave"):
            handler = self.worker.on_join if message.type == "join" else self.worker.on_leave
            self._call(handler, message.channel, who_of(message))
        # Another type (a newer writer): not this SDK's to interpret; acked unhandled.

    def event(self, kind: str, channel: str, info: dict[str, Any]) -> None:
        handler = self.worker.on_channel_active if kind == "active" else self.worker.on_channel_inactive
        self._call(handler, channel, info)

    def _call(self, handler: Call, *args: Any) -> None:
        result = handler(*args)
        if inspect.isawaitable(result):
            loop = getattr(self._local, "loop", None)
            if loop is None:
                import asyncio

                loop = self._local.loop = asyncio.new_event_loop()
            loop.run_until_complete(_awaited(result))


async def _awaited(result: Any) -> Any:
    return await result


def who_of(message: Message) -> Who:
    """A join/leave entry's `data` ({"info": ...} or {"reason": ...}); anything else reads as empty."""
    try:
        body = msgspec.json.decode(message.data)
    except msgspec.DecodeError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = str(body.get("reason") or "gone") if message.type == "leave" else ""
    return Who(message.user, message.client, body.get("info"), reason, message.id, message.ts)
