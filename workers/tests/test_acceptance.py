"""Issue 12 acceptance for the worker SDK, with real processes: a Redis server, `manage.py run_worker`
processes of one group, 20,000 messages over 20 channels in 8 partitions written with the stream
writer. The handler (workers.tests.recording) records the start and end of every message."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import msgspec
import redis

from partitions.rules import StreamTarget
from streams.catalog import StreamSpec
from streams.writer import stream_append
from tests.support.procs import ROOT, Process, wait_for
from workers.leases import lease_key

SPEC = StreamSpec("jobs", 8)
CHANNELS = 20
MESSAGES = 20_000
GROUP = "rec"


def publish_all(n: int = MESSAGES) -> None:
    """Channel c is in partition c % 8 (a channel's messages share one partition, as the rules place them)."""
    for seq in range(n):
        channel = seq % CHANNELS
        target = StreamTarget("jobs", channel % SPEC.partitions, None, True, None)
        data = msgspec.json.encode({"seq": seq // CHANNELS})
        stream_append(target=target, channel=f"jobs:{channel}", user="u1", client="c1", data=data)


def start_worker(name: str, tmp: Path, redis_url: str, **env: str) -> Process:
    argv = [sys.executable, "manage.py", "run_worker", "workers.tests.recording.RecordingWorker", "--name", name,
            "--partitions", str(SPEC.partitions)]  # fmt: skip
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "realtime.settings.test", "REDIS_URL": redis_url,
               "RECORD_FILE": str(tmp / "record.txt"), **env}  # fmt: skip
    return Process(argv, env=environ, log=tmp / f"{name}.log", cwd=ROOT)


@dataclass
class Run:
    starts: dict[str, list[tuple[int, str, int, str]]]  # channel -> (t, worker, seq, id) by start time
    intervals: dict[str, list[tuple[int, int | None, str]]]  # channel -> (start, end or None, worker)
    ended: Counter[tuple[str, int]]  # (channel, seq) -> handled to the end how many times
    ended_by: dict[tuple[str, int], set[str]]


def read_record(tmp: Path) -> Run:
    starts: dict[str, list[tuple[int, str, int, str]]] = defaultdict(list)
    open_: dict[tuple[str, str, str], int] = {}
    intervals: dict[str, list[tuple[int, int | None, str]]] = defaultdict(list)
    ended: Counter[tuple[str, int]] = Counter()
    ended_by: dict[tuple[str, int], set[str]] = defaultdict(set)
    for line in (tmp / "record.txt").read_text().splitlines():
        kind, worker, channel, seq, entry, t = line.split()
        if kind == "S":
            starts[channel].append((int(t), worker, int(seq), entry))
            open_[worker, channel, entry] = int(t)
        else:
            intervals[channel].append((open_.pop((worker, channel, entry)), int(t), worker))
            ended[channel, int(seq)] += 1
            ended_by[channel, int(seq)].add(worker)
    for (worker, channel, _), t in open_.items():  # started, never ended: the killed worker's
        intervals[channel].append((t, None, worker))
    for values in starts.values():
        values.sort()
    return Run(starts, intervals, ended, ended_by)


def handled_count(tmp: Path) -> int:
    path = tmp / "record.txt"
    return path.read_text().count("\nE ") if path.exists() else 0


def assert_no_overlap(run: Run, *, end_of_open: int) -> None:
    """No two handlers of one channel ever ran at the same time (a handler killed mid-way ran until the kill)."""
    for channel, spans in run.intervals.items():
        spans = sorted((start, end if end is not None else end_of_open, worker) for start, end, worker in spans)
        for (_, e1, w1), (s2, _, w2) in itertools.pairwise(spans):
            assert s2 >= e1, f"{channel}: {w2} started at {s2} before {w1} ended at {e1}"


def assert_drained(raw: redis.Redis) -> None:
    for key in SPEC.keys:
        [group] = raw.xinfo_groups(key)
        assert (group["pending"], group["lag"]) == (0, 0), (key, group)


def owners(raw: redis.Redis) -> dict[str, str]:
    found = {}
    for key in SPEC.keys:
        value = raw.get(lease_key(key, GROUP))
        if value:
            found[key] = value.decode().split()[0]
    return found


def shares(raw: redis.Redis) -> list[int]:
    """How many partitions each live owner holds, smallest first (one snapshot)."""
    return sorted(Counter(owners(raw).values()).values())


def test_issue12_item2_three_workers_handle_20000_messages_in_order_exclusively_and_once(
    redis_url: str, tmp_path: Path
) -> None:
    raw = redis.Redis.from_url(redis_url)
    workers = [start_worker(f"w{i}", tmp_path, redis_url) for i in range(3)]
    try:
        # The first to start takes every partition, and gives the extras up at its next heartbeat.
        wait_for(lambda: shares(raw) == [2, 3, 3], timeout=30, what="a fair share: 3, 3 and 2")
        publish_all()  # while they run
        wait_for(lambda: handled_count(tmp_path) >= MESSAGES, timeout=240, what="every message handled", interval=0.5)
        assert shares(raw) == [2, 3, 3]
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0, 0], [w.tail() for w in workers]
    run = read_record(tmp_path)
    per_channel = MESSAGES // CHANNELS
    for channel, starts in run.starts.items():
        assert [seq for _, _, seq, _ in starts] == list(range(per_channel)), f"{channel} out of order"
    assert len(run.starts) == CHANNELS
    assert set(run.ended.values()) == {1}, "a message was handled twice without a crash"
    assert sum(run.ended.values()) == MESSAGES
    assert_no_overlap(run, end_of_open=0)
    assert_drained(raw)
    assert owners(raw) == {}  # SIGTERM released every lease
    assert raw.zcard(f"rtgw:workers:{GROUP}") == 0
    per_worker = Counter(worker for spans in run.intervals.values() for _, _, worker in spans)
    print(f"\nhandled per worker: {dict(sorted(per_worker.items()))}")
    assert len(per_worker) == 3


def test_issue12_item2_kill_9_one_of_three_workers_mid_run(redis_url: str, tmp_path: Path) -> None:
    raw = redis.Redis.from_url(redis_url)
    # A little work per message, so the run lasts past the takeover (the default 6 s lease).
    workers = {f"w{i}": start_worker(f"w{i}", tmp_path, redis_url, HANDLER_SLEEP="0.0005") for i in range(3)}
    try:
        wait_for(lambda: shares(raw) == [2, 3, 3], timeout=30, what="a fair share: 3, 3 and 2")
        publish_all()
        wait_for(lambda: handled_count(tmp_path) >= MESSAGES // 4, timeout=120, what="a quarter handled")
        held = owners(raw)
        victim = next(name for name, count in Counter(held.values()).items() if count == 3)
        orphaned = {key for key, name in held.items() if name == victim}
        os.killpg(workers[victim].popen.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        killed_ns = time.monotonic_ns()
        workers[victim].popen.wait(timeout=5)
        taken: dict[str, float] = {}

        def all_taken() -> bool:
            for key, name in owners(raw).items():
                if key in orphaned and name != victim and key not in taken:
                    taken[key] = time.monotonic() - killed_at
            return len(taken) == len(orphaned)

        wait_for(all_taken, timeout=30, what="the killed worker's partitions owned again", interval=0.02)
        takeover = max(taken.values())
        print(f"\nkill -9 {victim}: its {len(orphaned)} partitions owned again after "
              f"{', '.join(f'{t:.2f}' for t in sorted(taken.values()))} s (bound: 6 s lease + 2 s heartbeat)")  # fmt: skip
        assert takeover <= 10.0
        expected = {(f"jobs:{c}", s) for c in range(CHANNELS) for s in range(MESSAGES // CHANNELS)}
        wait_for(lambda: set(read_record(tmp_path).ended) >= expected, timeout=240, what="everything handled",
                 interval=0.5)  # fmt: skip
        wait_for(lambda: all(raw.xinfo_groups(k)[0]["pending"] == 0 for k in SPEC.keys), timeout=30, what="acks")
    finally:
        codes = {name: w.stop() for name, w in workers.items() if name != victim}
    assert set(codes.values()) == {0}, [w.tail() for w in workers.values()]
    run = read_record(tmp_path)
    assert set(run.ended) == expected  # nothing unhandled
    assert_no_overlap(run, end_of_open=killed_ns)
    duplicates = [key for key, n in run.ended.items() if n > 1]
    # Each duplicate: the killed worker had handled it (its end is recorded) but not acked it.
    for key in duplicates:
        assert run.ended[key] == 2, key
        assert victim in run.ended_by[key], (key, run.ended_by[key])
    in_flight = sum(1 for spans in run.intervals.values() for _, end, w in spans if end is None)
    print(f"duplicates (handled by {victim}, not acked before the kill): {len(duplicates)}; "
          f"in flight at the kill (started, not ended): {in_flight}")  # fmt: skip
    # Order: per channel, handlers start in publish order, except that the new owner goes back to
    # the entries the killed worker had not acked, which it had handled (or started) itself.
    started_by = defaultdict(set)
    for channel, starts in run.starts.items():
        for _, worker, seq, _ in starts:
            started_by[channel, seq].add(worker)
        seqs = [seq for _, _, seq, _ in starts]
        assert seqs[0] == 0
        for a, b in itertools.pairwise(seqs):
            assert b == a + 1 or (b <= a and all(victim in started_by[channel, s] for s in range(b, a + 1))), (
                f"{channel}: {a} then {b}"
            )
    assert_drained(raw)
