"""The rule set each process holds in memory, and the watcher that keeps it current.

Callbacks call `rules_store.current()`: a plain attribute read, no I/O. A daemon thread polls the
one-row RuleSetVersion table every RULES_POLL_INTERVAL and swaps in a freshly compiled rule set
when the version moved. The database is the source of truth, and the version is bumped in the
same transaction as the change, so no notification can be lost (a Redis pub/sub message can) and
a replica that was down simply catches up on its next poll.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connections

from partitions.rules import RuleSet

logger = logging.getLogger(__name__)


class RulesStore:
    def __init__(self) -> None:
        self._ruleset: RuleSet | None = None
        self._stale = True
        self._lock = threading.Lock()
        self._watcher_pid: int | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def current(self) -> RuleSet:
        ruleset = self._ruleset
        if ruleset is None or self._stale:
            if ruleset is not None and _on_event_loop():
                # The database is not for the event loop (Django refuses it there): serve the rules
                # we hold; the fast path reloads them in a thread first (see `needs_load`).
                return ruleset
            ruleset = self._reload()
        if settings.RULES_WATCH and self._watcher_pid != os.getpid():
            self._start_watcher()
        return ruleset

    @property
    def needs_load(self) -> bool:
        """True when current() would read the database (nothing loaded yet, or invalidated)."""
        return self._ruleset is None or self._stale

    def invalidate(self) -> None:
        self._stale = True

    def stop(self, *, timeout: float = 10.0) -> None:
        """Ends the watcher thread and waits for it (tests: its last poll must not outlive the test
        database; a process that exits needs nothing, the thread is a daemon)."""
        self._stopping.set()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout)

    def _reload(self) -> RuleSet:
        from partitions.selectors import ruleset_load

        with self._lock:
            if self._ruleset is None or self._stale:
                self._stale = False
                try:
                    self._ruleset = ruleset_load()
                except Exception:
                    self._stale = True
                    raise
                logger.info("rules loaded: version %s", self._ruleset.version)
                from realtime.observability import RULES_VERSION

                RULES_VERSION.set(self._ruleset.version)
            return self._ruleset

    def _start_watcher(self) -> None:
        with self._lock:
            if self._watcher_pid == os.getpid():
                return
            self._watcher_pid = os.getpid()  # a forked child starts its own
        self._watcher = threading.Thread(target=self._watch, name="rules-watcher", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        from partitions.selectors import ruleset_version

        interval = settings.RULES_POLL_INTERVAL
        while not self._stopping.wait(interval):
            try:
                version = ruleset_version()
                loaded = self._ruleset
                if loaded is not None and (version != loaded.version or _something_ended(loaded)):
                    self._stale = True
                    self._reload()
            except Exception:
                # The database being away must not kill the watcher: keep serving the rules we
                # have, say so, and try again on the next tick.
                logger.warning("rules watcher: cannot read the rule set version", exc_info=True)
                close_old_connections()
                connections["default"].close()


def _something_ended(ruleset: RuleSet) -> bool:
    """A ban in the snapshot has run out: reload without a version bump (nobody acted)."""
    end = ruleset.access.next_end
    return end is not None and time.time() >= end


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


rules_store = RulesStore()
