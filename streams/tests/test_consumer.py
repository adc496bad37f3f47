from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from streams.catalog import StreamSpec
from streams.consumer import GroupConsumer, Handler, print_handler
from streams.process import blocking_redis
from streams.reader import Message
from tests.support.procs import ROOT, Process, wait_for

SPEC = StreamSpec("jobs", 2)


def fill(client: redis.Redis, n: int, spec: StreamSpec = SPEC) -> list[tuple[str, str]]:
    """n entries spread round-robin over the partitions, with the writer's fields."""
    keys = spec.keys
    ids = []
    for i in range(n):
        key = keys[i % len(keys)]
        fields = {"channel": f"jobs:{i}", "user": "u1", "client": "c1", "data": json.dumps({"n": i}), "ts": "1"}
        ids.append((key, client.xadd(key, fields)))
    return ids


def pending(client: redis.Redis, group: str = "g", spec: StreamSpec = SPEC) -> int:
    return sum(int(client.xpending(key, group)["pending"]) for key in spec.keys)


def consumer(
    name: str, handler: Handler, *, batch: int = 5, claim_idle_ms: int = 30_000, max_messages: int | None = None
) -> GroupConsumer:
    return GroupConsumer(
        client=blocking_redis(block_ms=50), group="g", consumer=name, keys=lambda: SPEC.keys, handler=handler,
        batch=batch, block_ms=50, claim_idle_ms=claim_idle_ms, max_messages=max_messages,
    )  # fmt: skip


def recorder(*, delay: float = 0.0) -> tuple[list[tuple[str, str]], Handler]:
    seen: list[tuple[str, str]] = []

    def record(message: Message) -> None:
        seen.append((message.stream_key, message.id))
        time.sleep(delay)

    return seen, record


def run_until(c: GroupConsumer, done: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not done after {timeout}s: {c.counts}"
        c.run_once()


def test_two_consumers_in_one_group_handle_every_entry_exactly_once(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 200)  # stored before the group exists: start id 0 consumes them
    handled = {name: recorder(delay=0.002) for name in ("a", "b")}
    consumers = [consumer(name, record) for name, (_, record) in handled.items()]
    threads = [threading.Thread(target=c.run, daemon=True) for c in consumers]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: sum(len(seen) for seen, _ in handled.values()) >= len(ids), timeout=15, what="all entries")
    finally:
        for c in consumers:
            c.stop()
        for thread in threads:
            thread.join(timeout=5)
    a, b = handled["a"][0], handled["b"][0]
    assert a, "both consumers should have had a share"
    assert b, "both consumers should have had a share"
    assert Counter(a + b) == Counter(ids)  # each entry once, none missing
    assert pending(redis_client) == 0


def test_entries_a_failed_consumer_left_pending_are_reclaimed_by_another(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    ids = fill(redis_client, 20)

    def crash(message: Message) -> None:
        raise RuntimeError("killed mid-batch")

    dying = consumer("a", crash, batch=3, max_messages=6)
    assert dying.run().failed == 6
    assert pending(redis_client) == 6
    assert "left pending for a retry" in caplog.text

    seen, record = recorder()
    survivor = consumer("b", record, claim_idle_ms=50)
    run_until(survivor, lambda: len(seen) == len(ids), timeout=5)
    assert sorted(seen) == sorted(ids)
    assert survivor.counts.reclaimed == 6
    assert pending(redis_client) == 0


def test_a_consumer_restarted_under_its_name_first_handles_its_own_pending_entries(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 6)
    redis_client.xgroup_create(SPEC.keys[0], "g", id="0")
    delivered = redis_client.xreadgroup("g", "a", {SPEC.keys[0]: ">"}, count=2)  # then "died" without acking
    assert len(delivered[0][1]) == 2
    seen, record = recorder()
    counts = consumer("a", record, max_messages=6).run()  # claim_idle_ms 30 s: no reclaim involved
    assert (counts.processed, counts.reclaimed) == (6, 0)
    assert sorted(seen) == sorted(ids)
    assert pending(redis_client) == 0


def test_print_handler_writes_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    print_handler(Message("rtgw:stream:{jobs:0}", "5-0", "jobs:1", "u1", "c1", b'{"a": [1]}', False, 7))
    line = capsys.readouterr().out
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert json.loads(line) == {
        "id": "5-0",
        "stream": "rtgw:stream:{jobs:0}",
        "channel": "jobs:1",
        "user": "u1",
        "ts": 7,
        "data": {"a": [1]},
    }


def test_a_killed_consumer_process_loses_nothing_and_sigterm_stops_the_next_one_cleanly(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    ids = fill(redis_client, 30)
    handled_file = tmp_path / "handled.txt"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "realtime.settings.test", "REDIS_URL": redis_url,
           "HANDLED_FILE": str(handled_file)}  # fmt: skip
    argv = [sys.executable, "manage.py", "stream_consume", "--group", "g", "--stream", "jobs", "--partitions", "2",
            "--handler", "streams.tests.handlers.record", "--batch", "5", "--block-ms", "100", "--claim-idle-ms", "300"]  # fmt: skip

    def handled() -> list[str]:
        return handled_file.read_text().splitlines() if handled_file.exists() else []

    first = Process([*argv, "--consumer", "a"], env={**env, "HANDLER_SLEEP": "0.1"}, log=tmp_path / "a.log", cwd=ROOT)
    try:
        wait_for(lambda: len(handled()) >= 3, timeout=20, what="the first consumer to handle some entries")
        os.killpg(first.popen.pid, signal.SIGKILL)  # mid-batch: it holds up to 10 delivered, unacked entries
        first.popen.wait(timeout=5)
    finally:
        first.stop()
    assert pending(redis_client) > 0
    assert len(handled()) < len(ids)

    second = Process([*argv, "--consumer", "b"], env=env, log=tmp_path / "b.log", cwd=ROOT)
    try:
        wait_for(lambda: pending(redis_client) == 0 and len(set(handled())) == len(ids), timeout=20, what="b to finish")
    finally:
        returncode = second.stop()
    assert returncode == 0, second.tail()
    assert re.search(
        r"^processed \d+, failed 0 \(reclaimed [1-9]\d*\), dead-lettered 0$", second.tail(), re.MULTILINE
    ), second.tail()

    lines = handled()
    assert set(lines) == {f"{key} {entry_id}" for key, entry_id in ids}
    # At-least-once: only an entry whose handler finished just before the kill, unacked, runs twice.
    assert len(lines) - len(set(lines)) <= 1
    for key in SPEC.keys:
        [group] = redis_client.xinfo_groups(key)
        assert (group["pending"], group["lag"]) == (0, 0)


def test_sigterm_lets_the_current_message_finish_and_be_acked(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    ids = fill(redis_client, 3, StreamSpec("jobs", 1))
    started, handled = tmp_path / "started.txt", tmp_path / "handled.txt"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "realtime.settings.test", "REDIS_URL": redis_url,
           "STARTED_FILE": str(started), "HANDLED_FILE": str(handled), "HANDLER_SLEEP": "0.5"}  # fmt: skip
    argv = [sys.executable, "manage.py", "stream_consume", "--group", "g", "--stream", "jobs", "--partitions", "1",
            "--handler", "streams.tests.handlers.record", "--batch", "1"]  # fmt: skip
    proc = Process(argv, env=env, log=tmp_path / "consumer.log", cwd=ROOT)
    try:
        wait_for(started.exists, timeout=20, what="the handler to start")
        os.killpg(proc.popen.pid, signal.SIGTERM)  # mid-handler: it sleeps 0.5 s
        returncode = proc.popen.wait(timeout=10)
    finally:
        proc.stop()
    assert returncode == 0, proc.tail()
    assert "processed 1, failed 0 (reclaimed 0), dead-lettered 0" in proc.tail()
    first = f"{ids[0][0]} {ids[0][1]}"
    assert handled.read_text().splitlines() == [first]
    [group] = redis_client.xinfo_groups(ids[0][0])
    assert (group["pending"], group["lag"], group["last-delivered-id"]) == (0, 2, ids[0][1])  # acked; 2 left
