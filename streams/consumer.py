"""Consumer groups over the message log (`manage.py stream_consume`): at-least-once delivery.

One group spans every partition key of the chosen streams. Per message: the handler runs, and only
when it returns is the entry acknowledged (XACK). A handler that raises leaves the entry pending;
so does a consumer that dies mid-batch. Pending entries idle longer than `claim_idle_ms` are taken
over by any live consumer of the group (XAUTOCLAIM, this one included) and handled again. So every
entry is handled at least once, and twice only when a consumer died (or the ack was lost) after
its handler finished: handlers should be idempotent, e.g. keyed on `message.id`.

A new group starts at id 0: entries already in the stream are consumed too, not just newer ones.
On start a consumer first re-handles its own pending entries (it restarted under the same name).
Ordering holds per partition, except that a retried entry comes after newer ones.

Dead letters: one entry the handler always fails on must not be retried forever. When the handler
fails on an entry Redis has delivered `max_deliveries` times (its XPENDING delivery count: every
XREADGROUP and XAUTOCLAIM of it counts), the entry is copied to the partition's dead-letter stream
`<prefix>:dead:{<stream>:<partition>}` (its fields, plus `error`, `group`, `consumer`, `orig_id`,
`deliveries`) and acked, in one MULTI (both keys share the hash slot), and logged.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import redis
from django.utils.module_loading import import_string

from realtime.redis import REDIS_UNAVAILABLE, Client
from streams.multiread import read_streams
from streams.reader import Message, message_from_entry

logger = logging.getLogger(__name__)

Handler = Callable[[Message], None]
Entries = list[tuple[bytes, dict[bytes, bytes] | None]]
MAX_ERROR_CHARS = 1000


def print_handler(message: Message) -> None:
    """The default handler: the message as one JSON line on stdout (data that is not JSON text,
    binary or a legacy entry, as `b64data`: `as_json` never embeds bytes that are not JSON)."""
    sys.stdout.write(msgspec.json.encode(message.as_json()).decode() + "\n")
    sys.stdout.flush()


def handler_load(path: str) -> Handler:
    handler = import_string(path)
    if not callable(handler):
        raise TypeError(f"{path} is not callable")
    return handler


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def dead_letter_key(key: str) -> str:
    """`<prefix>:stream:{s:p}` -> `<prefix>:dead:{s:p}`: same hash tag, so the same slot."""
    head, sep, tag = key.partition(":stream:{")
    return f"{head}:dead:{{{tag}" if sep else f"{key}:dead"


@dataclass
class Counts:
    processed: int = 0
    failed: int = 0
    reclaimed: int = 0  # entries taken over from idle pending lists (any consumer's)
    dead: int = 0  # entries moved to a dead-letter stream after max_deliveries failed deliveries

    def summary(self) -> str:
        return (
            f"processed {self.processed}, failed {self.failed} (reclaimed {self.reclaimed}), dead-lettered {self.dead}"
        )


class GroupConsumer:
    def __init__(
        self,
        *,
        client: Client,
        group: str,
        consumer: str,
        keys: Callable[[], Sequence[str]],
        handler: Handler,
        batch: int = 10,
        block_ms: int = 2000,
        claim_idle_ms: int = 30_000,
        max_messages: int | None = None,
        max_deliveries: int = 5,
    ) -> None:
        self.counts = Counts()
        self._client = client
        self._group = group
        self._consumer = consumer
        self._keys_source = keys  # called again at every reclaim, so new streams are picked up
        self._keys: list[str] = []
        self._handler = handler
        self._batch = batch
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._max_messages = max_messages
        self._max_deliveries = max_deliveries
        self._next_claim = 0.0
        self._stopping = False

    def stop(self) -> None:
        """Safe from a signal handler: the current message is finished and acked, then run() returns."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        if self._max_messages is not None and self.counts.processed + self.counts.failed >= self._max_messages:
            return True
        return self._stopping

    def run(self) -> Counts:
        self.refresh_keys()
        self.handle_own_pending()
        while not self.stopping:
            try:
                self.run_once()
            except REDIS_UNAVAILABLE:
                logger.warning("redis unavailable; retrying in 1 s", exc_info=True)
                self._pause(1.0)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                logger.warning("a stream or its group was deleted; creating it again")
                self._ensure_groups(self._keys)
        return self.counts

    def run_once(self) -> int:
        """Reclaim idle pending entries if due, then read and handle one batch; returns how many."""
        handled = 0
        if time.monotonic() >= self._next_claim:
            self.refresh_keys()
            handled += self.reclaim()
            self._next_claim = time.monotonic() + self._claim_idle_ms / 2000
        if not self._keys or self.stopping:
            return handled
        reply = read_streams(
            self._client, dict.fromkeys(self._keys, ">"), count=self._batch, block_ms=self._block_ms,
            group=(self._group, self._consumer),
        )  # fmt: skip
        for raw_key, entries in reply:
            handled += self._handle_entries(raw_key.decode(), entries)
        return handled

    def refresh_keys(self) -> None:
        try:
            keys = list(self._keys_source())
        except Exception:
            # The rules (database) being away must not stop consuming the streams we know.
            logger.warning("cannot list the stream keys; keeping %d known keys", len(self._keys), exc_info=True)
            return
        self._ensure_groups([k for k in keys if k not in self._keys])
        self._keys = keys

    def handle_own_pending(self) -> int:
        """Entries delivered to this consumer name earlier and never acked (a restart): id 0 reads
        them back instead of new ones. The cursor moves past each, so a failing one is not looped on."""
        handled = 0
        for key in self._keys:
            cursor = "0"
            while not self.stopping:
                reply: Any = self._client.xreadgroup(self._group, self._consumer, {key: cursor}, count=self._batch)
                entries = reply[0][1] if reply else []
                if not entries:
                    break
                handled += self._handle_entries(key, entries)
                cursor = entries[-1][0].decode()
        return handled

    def reclaim(self) -> int:
        """Take over entries pending longer than claim_idle_ms, from any consumer, and handle them."""
        handled = 0
        for key in self._keys:
            cursor = "0-0"
            while not self.stopping:
                claimed: Any = self._client.xautoclaim(
                    key, self._group, self._consumer, self._claim_idle_ms, cursor, count=self._batch
                )
                cursor_raw, entries = claimed[0], claimed[1]  # Redis >= 7 adds the ids of deleted entries
                self.counts.reclaimed += len(entries)
                handled += self._handle_entries(key, entries)
                cursor = cursor_raw.decode()
                if cursor == "0-0":
                    break
        return handled

    def _handle_entries(self, key: str, entries: Entries) -> int:
        handled = 0
        for entry_id, fields in entries:
            if self.stopping:
                break  # the rest stay pending: reclaimed later, or re-read when this name restarts
            if not fields:
                # Trimmed away after delivery (Redis < 7 still lists it): nothing left to handle.
                self._client.xack(key, self._group, entry_id)
                continue
            try:
                self._handler(message_from_entry(key, entry_id, fields))
            except Exception as exc:
                self.counts.failed += 1
                self._failed(key, entry_id, fields, exc)
            else:
                self._client.xack(key, self._group, entry_id)
                self.counts.processed += 1
            handled += 1
        return handled

    def _failed(self, key: str, entry_id: bytes, fields: dict[bytes, bytes], exc: Exception) -> None:
        """Leave the entry pending for a retry, or dead-letter it once it has had its deliveries.
        One XPENDING per failure only: the success path costs nothing more."""
        entry = entry_id.decode()
        found: Any = self._client.xpending_range(key, self._group, min=entry, max=entry, count=1)
        deliveries = int(found[0]["times_delivered"]) if found else 0
        if deliveries < self._max_deliveries:
            logger.warning(
                "handler failed on %s %s (delivery %d of %d); left pending for a retry",
                key, entry, deliveries, self._max_deliveries, exc_info=exc,
            )  # fmt: skip
            return
        dead_key = dead_letter_key(key)
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        extra = {b"error": error, b"group": self._group, b"consumer": self._consumer, b"orig_id": entry,
                 b"deliveries": str(deliveries)}  # fmt: skip
        pipe = self._client.pipeline(transaction=True)
        pipe.xadd(dead_key, {**fields, **extra})  # type: ignore[dict-item]
        pipe.xack(key, self._group, entry_id)
        pipe.execute()
        self.counts.dead += 1
        logger.error(
            "handler failed on %s %s %d times; moved to %s and acked: %s",
            key, entry, deliveries, dead_key, error, exc_info=exc,
        )  # fmt: skip

    def _ensure_groups(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                # Start id 0: a new group consumes what is already stored. MKSTREAM: the key may not
                # exist yet (no publication so far).
                self._client.xgroup_create(key, self._group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(0.05)
