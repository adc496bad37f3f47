"""Running one worker process: its share of the partitions, each handled in log order, at least once.

Ownership (workers.leases): a heartbeat thread, every third of the lease time, registers the
worker as live, renews its leases, and rebalances: with P partitions and L live workers a worker
keeps at most ceil(P / L); one with more marks extras for release (the loop gives them up after the
entry in hand, acks flushed), one with fewer takes free ones (SET NX). A dead worker's leases and
its registration expire together, so the survivors' share grows just as its partitions come free.

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
started only while the lease is certainly ours (counted from when the last renewal was sent, 90 %
of the TTL). Two handlers of one partition can overlap only if a process is frozen or cut off
from Redis for longer than the lease while inside a handler. Duplicates come from: a worker that
dies (or loses its lease) after handlers returned and before the batch's ack, so up to one batch
per partition it owned; and a handler that raised after a side effect.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import redis
from django.conf import settings
from django.utils.module_loading import import_string

from realtime.redis import REDIS_UNAVAILABLE, Client
from streams.consumer import MAX_ERROR_CHARS, dead_letter_key
from streams.multiread import read_streams
from workers import metrics
from workers.leases import Lease, Leases
from workers.message import Message
from workers.sdk import Dispatch, Worker

logger = logging.getLogger("workers")

ACK_EVERY = 0.1  # seconds: a slow batch's handled entries are acked at least this often
RETRY_PAUSE = (0.2, 5.0)  # seconds before a failed entry is tried again: doubling from, at most
MATCH_CACHE = 10_000  # channels whose pattern match is remembered (then forgotten all at once)
LIFECYCLE = "workers.lifecycle.Lifecycle"  # h12-life's component; a no-op stand-in until it exists


class NoLifecycle:
    """The lifecycle interface (before / due), doing nothing."""

    def __init__(self, client: Client, *, key: str, group: str, idle_seconds: float) -> None:
        pass

    def before(self, message: Any) -> list[Any]:
        return []

    def due(self, now_ms: int) -> list[Any]:
        return []

    def close(self) -> None:
        pass


def _close(lifecycle: Any) -> None:
    """workers.lifecycle's close(): confirm what was dispatched, write what it kept in memory (an
    addition to the before/due interface; a lifecycle without it has nothing to close)."""
    close = getattr(lifecycle, "close", None)
    if close is not None:
        close()


def lifecycle_class() -> Callable[..., Any]:
    try:
        return import_string(LIFECYCLE)
    except ImportError:
        return NoLifecycle


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


class Runner:
    def __init__(
        self,
        worker: Worker,
        *,
        client: Client,
        keys: Sequence[str],
        lease_seconds: float,
        max_deliveries: int,
        concurrency: int = 1,
        block_ms: int = 1000,
    ) -> None:
        if not worker.group:
            raise ValueError(f"{type(worker).__name__}.group is not set")
        self.worker = worker
        self.counts = Counts()
        self._client = client
        self._group = worker.group
        self._name = worker.name
        self._keys = list(keys)
        self._leases = Leases(client, group=self._group, name=self._name, ttl_seconds=lease_seconds)
        self._beat = lease_seconds / 3
        self._max_deliveries = max_deliveries
        self._block_ms = block_ms
        self._dispatch = Dispatch(worker)
        self._patterns = list(worker.channels)
        self._matched: dict[str, bool] = {}
        # None for every channel ("*"): no test per entry.
        self._match: Callable[[str], bool] | None = None if self._patterns == ["*"] else self._matches
        self._lifecycle = lifecycle_class()
        self._owned: dict[str, Owned] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stop_requested = False  # the same as _stopping.is_set(), read per entry more cheaply
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="handler") if concurrency > 1 else None
        self._groups_ready: set[str] = set()
        self._next_due = 0.0

    # --- lifecycle of the process -------------------------------------------------------------
    def stop(self) -> None:
        """Safe from a signal handler: entries in hand finish and are acked, leases are released."""
        self._stop_requested = True
        self._stopping.set()

    def _pause(self, seconds: float) -> None:
        # Not Event.wait on this (the main) thread: stop() runs in a signal handler on it, and
        # Event.set() would block on the lock Event.wait holds for an instant.
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)

    def owned(self) -> list[str]:
        with self._lock:
            return sorted(o.key for o in self._owned.values())

    def run(self) -> Counts:
        heart = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        try:
            self._heartbeat()  # the first share now, not a third of the lease time later
        except REDIS_UNAVAILABLE:
            logger.warning("redis unavailable at start; the heartbeat keeps trying", exc_info=True)
        heart.start()
        try:
            while not self._stopping.is_set():
                try:
                    self.run_once()
                except REDIS_UNAVAILABLE:
                    logger.warning("redis unavailable; retrying in 1 s", exc_info=True)
                    self._pause(1.0)
                except redis.ResponseError as exc:
                    # NOGROUP: the key or its group is gone; UNBLOCKED: deleted during a blocking read.
                    if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                        raise
                    logger.warning("a partition or its group was deleted; creating them again")
                    self._groups_ready.clear()
                    for key in self.owned():
                        self._ensure_group(key)
        finally:
            self._stop_requested = True
            self._stopping.set()
            heart.join(timeout=self._beat + 5)
            self._release_all()
            if self._pool is not None:
                self._pool.shutdown()
        return self.counts

    def run_once(self) -> None:
        with self._lock:
            owned = list(self._owned.values())
        for o in owned:
            if o.release:
                self._give_up(o)
        owned = [o for o in owned if not o.release and o.lease.held()]
        now = time.monotonic()
        if now >= self._next_due:
            self._next_due = now + 1.0
            for o in owned:
                self._run_due(o)
        recovering = [o for o in owned if o.recovering]
        reading = [o for o in owned if not o.recovering]
        work: list[tuple[Owned, list[Any]]] = []
        for o in recovering:
            if o.retry_at <= now:
                work.append((o, self._claim(o)))
        if reading:
            block = None if work or recovering else self._block_ms
            by_key = {o.key: o for o in reading}
            reply = read_streams(
                self._client, dict.fromkeys(by_key, ">"), count=self.worker.batch, block_ms=block,
                group=(self._group, self._name),
            )  # fmt: skip
            work += [(by_key[raw_key.decode()], entries) for raw_key, entries in reply]
        elif not work:
            self._pause(0.05 if recovering else 0.2)
            return
        work = [(o, entries) for o, entries in work if entries]
        if self._pool is None or len(work) < 2:
            for o, entries in work:
                self._handle(o, entries)
        else:
            for future in [self._pool.submit(self._handle, o, entries) for o, entries in work]:
                future.result()

    # --- one partition ------------------------------------------------------------------------
    def _claim(self, o: Owned) -> list[Any]:
        """The next pending entries of the group on this partition, in id order, now ours."""
        self._ensure_group(o.key)
        reply: Any = self._client.xautoclaim(o.key, self._group, self._name, 0, "0-0", count=self.worker.batch)
        entries = reply[1]
        if not entries:
            o.recovering = False
            logger.info("partition %s: nothing pending, reading new entries", o.key)
        return list(entries)

    def _handle(self, o: Owned, entries: list[Any]) -> None:
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
                    if now >= lease.valid_until or o.release or self._stop_requested:
                        break  # the rest stay pending: the next owner (or we, later) claims them first
                    if now >= ack_at:  # a slow batch: its handled entries are counted and acked as it goes
                        counted = self._count(o, handled, counted)
                        self._flush(o)
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
                        self._flush(o)
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
            self._flush(o)

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

    def _flush(self, o: Owned) -> None:
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

    def _run_due(self, o: Owned) -> None:
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

    def _ensure_group(self, key: str) -> None:
        if key in self._groups_ready:
            return
        try:
            # Start id 0: a new group handles what is already stored. MKSTREAM: no entry yet.
            self._client.xgroup_create(key, self._group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups_ready.add(key)

    def _give_up(self, o: Owned) -> None:
        self._flush(o)
        _close(o.lifecycle)  # before the lease goes: the next owner must not fire its inactive again
        with self._lock:
            self._owned.pop(o.key, None)
        self._leases.release(o.lease)
        logger.info("partition %s released (rebalancing)", o.key)

    def _release_all(self) -> None:
        with self._lock:
            owned, self._owned = list(self._owned.values()), {}
        for o in owned:
            try:
                self._flush(o)
                _close(o.lifecycle)
                self._leases.release(o.lease)
            except REDIS_UNAVAILABLE:
                logger.warning("partition %s: could not release the lease; it expires by itself", o.key)
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            self._leases.unregister()
        metrics.owned(self._group, 0)

    # --- heartbeat: liveness, renewal, fair share ---------------------------------------------
    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self._beat):
            try:
                self._heartbeat()
            except REDIS_UNAVAILABLE:
                logger.warning("heartbeat: redis unavailable", exc_info=True)
            except Exception:
                logger.exception("heartbeat failed")

    def _heartbeat(self) -> None:
        live = self._leases.register()
        with self._lock:
            owned = list(self._owned.values())
        for o in owned:
            # One marked for release is renewed too: it is still being handled until given up.
            if not self._leases.renew(o.lease):
                self.counts.lost += 1
                with self._lock:
                    self._owned.pop(o.key, None)
                logger.warning("partition %s: lease lost (expired and taken over)", o.key)
        with self._lock:
            kept = [o for o in self._owned.values() if not o.release]
        share = math.ceil(len(self._keys) / max(live, 1))
        if len(kept) > share:
            for o in sorted(kept, key=lambda o: o.key)[share:]:
                o.release = True
        elif len(kept) < share and not self._stopping.is_set():
            self._take_free(share - len(kept))
        metrics.owned(self._group, len(self.owned()))
        if metrics.enabled():
            for o in list(self._owned.values()):
                metrics.lag(self._client, self._group, o.key)

    def _take_free(self, wanted: int) -> None:
        start = sum(map(ord, self._name)) % max(len(self._keys), 1)  # spread first tries over workers
        for key in self._keys[start:] + self._keys[:start]:
            if wanted == 0:
                return
            with self._lock:
                if key in self._owned:
                    continue
            lease = self._leases.acquire(key)
            if lease is None:
                continue
            self._ensure_group(key)
            idle = self.worker.idle_seconds or settings.WORKER_CHANNEL_IDLE_SECONDS
            life = self._lifecycle(self._client, key=key, group=self._group, idle_seconds=idle)
            with self._lock:
                self._owned[key] = Owned(lease, life)
            wanted -= 1
            logger.info("partition %s acquired (fencing token %d)", key, lease.token)
