"""The leave detector: every JOIN_LEAVE_REAP_INTERVAL seconds, on each callback worker's event loop,
`streams.joinleave.reap_async` on every partition of the streams the rules write — members whose
heartbeat (sub_refresh) stopped get their leave entry.

Why on every worker's loop rather than one process somewhere: the reap script is atomic per
partition (remove the member and XADD its leave together), so any number of reapers emit one leave
per member, and the gateway needs no extra process, no election, no single point whose death stops
leaves. A pass costs one EVALSHA per partition whatever the number of members (an empty
ZRANGEBYSCORE), measured in bench/RESULTS.md ("Join and leave"). It runs only while some channel
rule has `log_join_leave` on, and LINGER seconds after the last one is switched off (so members
recorded before still get their leave). A partition the rules stop writing (a partition rule
shrank, a stream renamed) is reaped for LINGER more seconds too: its members' heartbeats now go to
their channel's new partition, so each one's deadline passes within LINGER and it gets its leave
in the partition that has its join. Only a process that saw the change knows the old partitions:
if every callback worker restarts within LINGER of it, the rest expire with their members set
(MEMBERS_TTL_MS, 24 h) without a leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from django.conf import settings

from partitions.rules import RuleSet
from partitions.store import rules_store
from realtime.wsgi_bridge import run_blocking
from streams.catalog import stream_specs_of
from streams.joinleave import Trim, reap_async
from streams.writer import StreamUnavailable

logger = logging.getLogger("streams")
# Longer than the longest a recorded member may wait for its deadline (3 + 30 s + the grace).
LINGER = 120.0


Partition = tuple[str, int]  # (stream, partition)


def partitions_to_reap(ruleset: RuleSet) -> dict[Partition, Trim]:
    """Every partition `ruleset` writes, with how its stream is trimmed, when one of its channel
    rules logs joins and leaves; {} otherwise."""
    if not any(rule.options.get("log_join_leave") for rule in ruleset.channel_rules):
        return {}
    return {
        (spec.name, p): Trim(spec.max_length, spec.max_age_seconds)
        for spec in stream_specs_of(ruleset)
        for p in range(spec.partitions)
    }


class Reaper:
    def __init__(self) -> None:
        self._ruleset: RuleSet | None = None
        self._partitions: dict[Partition, Trim] = {}  # what the current rules write (and log join/leave of)
        self._retired: dict[Partition, tuple[Trim, float]] = {}  # no longer written: reaped until (monotonic)
        self._failing = False

    async def run(self, interval: float) -> None:
        """Until cancelled. The first pass after a random part of the interval, so the workers
        of a replica do not all reap at the same moment."""
        await asyncio.sleep(random.uniform(0, interval))  # noqa: S311 - spreading, not secrecy
        while True:
            try:
                await self.reap_once()
            except Exception:  # the rules cannot be read, say: the next pass tries again
                logger.exception("join/leave reaper: pass failed")
            await asyncio.sleep(interval)

    async def reap_once(self) -> int:
        """One pass over every partition; the number of leaves written. A Redis failure is
        logged once until it recovers, and the pass is tried again at the next interval."""
        ruleset = rules_store.current() if not rules_store.needs_load else await run_blocking(rules_store.current)
        now = time.monotonic()
        if ruleset is not self._ruleset:
            self._ruleset = ruleset
            found = partitions_to_reap(ruleset)
            for partition, trim in self._partitions.items():  # switched off, or no longer written: linger
                if partition not in found:
                    self._retired[partition] = (trim, now + LINGER)
            for partition in found:
                self._retired.pop(partition, None)
            self._partitions = found
        self._retired = {partition: item for partition, item in self._retired.items() if item[1] > now}
        todo = {**{partition: trim for partition, (trim, _) in self._retired.items()}, **self._partitions}
        if not todo:
            return 0
        try:
            counts = await asyncio.gather(*(reap_async(s, p, trim) for (s, p), trim in todo.items()))
        except StreamUnavailable as exc:
            if not self._failing:
                logger.warning("join/leave reaper: Redis unavailable, leaves are late: %s", exc)
            self._failing = True
            return 0
        if self._failing:
            logger.warning("join/leave reaper: Redis is back")
        self._failing = False
        return sum(counts)


_task: asyncio.Task[None] | None = None


def start_reaper() -> None:
    """On the worker's loop at start-up (callbacks.fastpath's lifespan); JOIN_LEAVE_REAP_INTERVAL 0: none."""
    global _task
    if settings.JOIN_LEAVE_REAP_INTERVAL > 0 and _task is None:
        _task = asyncio.get_running_loop().create_task(Reaper().run(settings.JOIN_LEAVE_REAP_INTERVAL))


async def stop_reaper() -> None:
    global _task
    task, _task = _task, None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
