"""Running one worker process: its share of the partitions, each handled in log order, at least once.

Ownership (workers.leases): a heartbeat thread, every third of the lease time, registers the
worker as live, renews its leases, and rebalances: with P partitions and L live workers a worker
keeps at most ceil(P / L); one with more marks extras for release (the loop gives them up after the
entry in hand, acks flushed), one with fewer takes free ones (SET NX). A dead worker's leases and
its registration expire together, so the survivors' share grows just as its partitions come free.

Each owned partition is handled by workers.partition (recovery of pending entries first, then new
ones in id order, fenced acks per batch, retries and dead letters): its docstring says what is
guaranteed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from django.conf import settings
from django.utils.module_loading import import_string

from realtime.redis import REDIS_UNAVAILABLE, Client
from streams.multiread import read_streams
from workers import metrics
from workers.leases import Leases
from workers.partition import Counts, Owned, PartitionWork
from workers.sdk import Worker

logger = logging.getLogger("workers")

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
        self._block_ms = block_ms
        self._work = PartitionWork(worker, client=client, leases=self._leases, counts=self.counts,
                                   max_deliveries=max_deliveries)  # fmt: skip
        self._lifecycle = lifecycle_class()
        self._owned: dict[str, Owned] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="handler") if concurrency > 1 else None
        self._next_due = 0.0

    # --- lifecycle of the process -------------------------------------------------------------
    def stop(self) -> None:
        """Safe from a signal handler: entries in hand finish and are acked, leases are released."""
        self._work.stop_requested = True
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
                    self._work.groups_ready.clear()
                    for key in self.owned():
                        self._work.ensure_group(key)
        finally:
            self._work.stop_requested = True
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
                self._work.run_due(o)
        recovering = [o for o in owned if o.recovering]
        reading = [o for o in owned if not o.recovering]
        work: list[tuple[Owned, list[Any]]] = []
        for o in recovering:
            if o.retry_at <= now:
                work.append((o, self._work.claim(o)))
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
                self._work.handle(o, entries)
        else:
            for future in [self._pool.submit(self._work.handle, o, entries) for o, entries in work]:
                future.result()

    # --- one partition ------------------------------------------------------------------------
    def _give_up(self, o: Owned) -> None:
        self._work.flush(o)
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
                self._work.flush(o)
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
            self._work.ensure_group(key)
            idle = self.worker.idle_seconds or settings.WORKER_CHANNEL_IDLE_SECONDS
            life = self._lifecycle(self._client, key=key, group=self._group, idle_seconds=idle)
            with self._lock:
                self._owned[key] = Owned(lease, life)
            wanted -= 1
            logger.info("partition %s acquired (fencing token %d)", key, lease.token)
