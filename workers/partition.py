"""What a worker process does with each partition it owns (workers.runner decides which).

Handling one owned partition, in this order:
1. Recovery: the group's entries still pending on that partition (a dead or former owner's, or
   ours after a failure) are claimed in id order (XAUTOCLAIM, idle 0: we hold the lease) and
   handled first.
2. New entries (XREADGROUP >), a batch at a time, handled one by one in id order. An entry is
   acked (XACK) only after its handlers returned; acks are sent in one fenced script per batch
   (or every ACK_EVERY seconds of a slow batch), and the script applies them only if the lease
   still holds our value.
3. A handler that raises stops the partition's batch (order: nothing after it runs first); the
   entry is retried after a pause by recovery; on the WORKER_MAX_DELIVERIES-th failed delivery it
   is moved to `<prefix>:dead:{<stream>:<partition>}` with the error, and acked (fenced too).

What is guaranteed: an ack (and a dead letter) applies only while the lease is ours; an entry is
started only while the lease is certainly ours (counted from when the last renewal was sent, nine
tenths of the TTL). Two handlers of one partition can overlap only if a process is frozen or cut off
from Redis for longer than the lease while inside a handler. Duplicates come from: a worker that
dies (or loses its lease) after handlers returned and before the batch's ack, so up to one batch
per partition it owned; and a handler that raised after a side effect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import redis

from realtime.redis import Client
from streams.consumer import MAX_ERROR_CHARS, dead_letter_key
from workers import metrics
from workers.leases import Lease, Leases
from workers.message import Message
from workers.sdk import Dispatch, Worker

logger = logging.getLogger("workers")

ACK_EVERY = 0.1  # seconds: a slow batch's handled entries are acked at least this often
RETRY_PAUSE = (0.2, 5.0)  # seconds before a failed entry is tried again: doubling from, at most
MATCH_CACHE = 10_000  # channels whose pattern match is remembered (then forgotten all at once)


@dataclass
class Counts:
    handled: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0  # entries of channels the worker does not match: acked unhandled
    lost: int = 0  # leases taken away (expired while this worker was away)
    fenced_acks: int = 0  # acks refused because the lease was no longer ours

    def summary(self) -> str:
        return (
            f"handled {self.handled}, failed {self.failed}, dead-lettered {self.dead}, skipped {self.skipped}, "
            f"leases lost {self.lost}, fenced acks {self.fenced_acks}"
        )


@dataclass(eq=False)
class Owned:
    lease: Lease
    lifecycle: Any
    recovering: bool = True  # pending entries of the group are handled before new ones
    retry_at: float = 0.0
    failures: int = 0
    release: bool = False  # the heartbeat asked for it to be given up (rebalancing)
    unacked: list[bytes] = field(default_factory=list)
    last_ack: float = 0.0

    @property
    def key(self) -> str:
        return self.lease.stream_key


class PartitionWork:
    """Claiming, handling, acking and dead-lettering the entries of the partitions a process owns,
    and their lifecycle ticks; one per process, shared by its handler threads (one partition is
    never handled by two threads at once)."""

    def __init__(self, worker: Worker, *, client: Client, leases: Leases, counts: Counts, max_deliveries: int) -> None:
        self.worker = worker
        self.counts = counts
        self.stop_requested = False  # set by the runner's stop(): no entry is started after it
        self.groups_ready: set[str] = set()  # partitions whose consumer group is known to exist
        self._client = client
        self._group = worker.group
        self._name = worker.name
        self._leases = leases
        self._max_deliveries = max_deliveries
        self._dispatch = Dispatch(worker)
        self._patterns = list(worker.channels)
        self._matched: dict[str, bool] = {}
        # None for every channel ("*"): no test per entry.
        self._match: Callable[[str], bool] | None = None if self._patterns == ["*"] else self._matches

    def claim(self, o: Owned) -> list[Any]:
        """The next pending entries of the group on this partition, in id order, now ours."""
        self.ensure_group(o.key)
        reply: Any = self._client.xautoclaim(o.key, self._group, self._name, 0, "0-0", count=self.worker.batch)
        entries = reply[1]
        if not entries:
            o.recovering = False
            logger.info("partition %s: nothing pending, reading new entries", o.key)
        return list(entries)

    def handle(self, o: Owned, entries: list[Any]) -> None:
        """Entries of one partition, in order; stops at a failure, a release, a stop or a lost lease.

        The hot path of a worker (bench.workers): per entry, one clock read and a few attribute
        tests, the Message built lazily (workers.message), the lifecycle's dict lookup, a plain
        `on_message` called directly. Counters, the publish context and the failure reset are
        per batch."""
        key, lease, dispatch, before = o.key, o.lease, self._dispatch, o.lifecycle.before
        clock, unacked, on_message, matches = time.monotonic, o.unacked, dispatch.on_message_sync, self._match
        handled = counted = 0  # entries handled in this batch; of them, added to the counters
        o.last_ack = clock()
        ack_at = o.last_ack + ACK_EVERY
        try:
            with dispatch.handling() as current:
                for entry_id, fields in entries:
                    now = clock()
                    if now >= lease.valid_until or o.release or self.stop_requested:
                        break  # the rest stay pending: the next owner (or we, later) claims them first
                    if now >= ack_at:  # a slow batch: its handled entries are counted and acked as it goes
                        counted = self._count(o, handled, counted)
                        self.flush(o)
                        ack_at = o.last_ack + ACK_EVERY
                    if not fields:  # trimmed away after delivery: nothing left to handle
                        unacked.append(entry_id)
                        continue
                    kind = fields.get(b"type")
                    message = Message(
                        key, entry_id.decode(), fields.get(b"channel", b"").decode(errors="replace"),
                        "message" if kind is None else kind.decode(errors="replace"), fields,
                    )  # fmt: skip
                    if matches is not None and not matches(message.channel):
                        self.counts.skipped += 1
                        unacked.append(entry_id)
                        continue
                    try:
                        events = before(message)
                        if events:
                            current.message = None  # a publish in on_channel_* is not the entry's
                            for event in events:
                                dispatch.event(event.kind, event.channel, event.info)
                        if on_message is not None and kind is None:
                            current.message = message
                            on_message(message.channel, message)
                        else:
                            dispatch.message(message, current)
                    except Exception as exc:
                        self.flush(o)
                        if handled:
                            o.failures = 0  # it succeeded since the last failure: the pause starts over
                        self._failed(o, entry_id, fields, exc)
                        return
                    unacked.append(entry_id)
                    handled += 1
            if handled and o.failures:
                o.failures = 0  # no failure in this batch after a success: the next pause starts over
        finally:
            self._count(o, handled, counted)
            self.flush(o)

    def _count(self, o: Owned, handled: int, counted: int) -> int:
        if handled > counted:
            self.counts.handled += handled - counted
            metrics.partition(self._group, o.key).handled.inc(handled - counted)
        return handled

    def _matches(self, channel: str) -> bool:
        """Whether the worker's channel patterns match (remembered: a worker sees few channels often)."""
        found = self._matched.get(channel)
        if found is None:
            if len(self._matched) >= MATCH_CACHE:
                self._matched.clear()
            found = self._matched[channel] = any(fnmatchcase(channel, p) for p in self._patterns)
        return found

    def flush(self, o: Owned) -> None:
        if not o.unacked:
            return
        ids = o.unacked[:]
        o.unacked.clear()  # in place: _handle holds the list
        o.last_ack = time.monotonic()
        if self._leases.ack(o.lease, ids) < 0:
            self.counts.fenced_acks += len(ids)
            o.lease.valid_until = 0.0
            logger.warning(
                "partition %s: lease lost; %d handled entries not acked (the new owner handles them again), "
                "last %s", o.key, len(ids), ids[-1].decode(),
            )  # fmt: skip

    def _failed(self, o: Owned, entry_id: bytes, fields: dict[bytes, bytes], exc: Exception) -> None:
        entry = entry_id.decode()
        channel = fields.get(b"channel", b"").decode(errors="replace")
        self.counts.failed += 1
        metrics.partition(self._group, o.key).failed.inc()
        [pending] = self._client.xpending_range(o.key, self._group, min=entry, max=entry, count=1) or [{}]
        deliveries = int(pending.get("times_delivered", 1))
        o.recovering, o.failures = True, o.failures + 1
        o.retry_at = time.monotonic() + min(RETRY_PAUSE[0] * 2 ** (o.failures - 1), RETRY_PAUSE[1])
        if deliveries < self._max_deliveries:
            logger.warning(
                "handler failed on channel %s entry %s of %s (try %d of %d); retried",
                channel, entry, o.key, deliveries, self._max_deliveries, exc_info=exc,
            )  # fmt: skip
            return
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        extra = {b"error": error, b"group": self._group, b"consumer": self._name, b"orig_id": entry,
                 b"deliveries": str(deliveries)}  # fmt: skip
        dead_key = dead_letter_key(o.key)
        if self._leases.dead_letter(o.lease, entry_id, {**fields, **extra}, dead_key) < 0:
            self.counts.fenced_acks += 1
            o.lease.valid_until = 0.0
            return
        self.counts.dead += 1
        metrics.partition(self._group, o.key).dead.inc()
        o.retry_at = 0.0
        logger.error(
            "handler failed on channel %s entry %s of %s %d times; moved to %s: %s",
            channel, entry, o.key, deliveries, dead_key, error, exc_info=exc,
        )  # fmt: skip

    def run_due(self, o: Owned) -> None:
        # Every event due() claimed is dispatched, each on its own: one failing handler must not
        # drop the others (the lifecycle counts them dispatched at its next call).
        try:
            events = o.lifecycle.due(int(time.time() * 1000))
        except Exception:
            logger.exception("partition %s: channel lifecycle tick failed; next tick in 1 s", o.key)
            return
        for event in events:
            try:
                self._dispatch.event(event.kind, event.channel, event.info)
            except Exception:
                logger.exception("partition %s: on_channel_%s failed for %s", o.key, event.kind, event.channel)

    def ensure_group(self, key: str) -> None:
        if key in self.groups_ready:
            return
        try:
            # Start id 0: a new group handles what is already stored. MKSTREAM: no entry yet.
            self._client.xgroup_create(key, self._group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.groups_ready.add(key)
