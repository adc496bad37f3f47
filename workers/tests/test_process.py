"""`manage.py run_worker` as a process: SIGTERM mid-handler, its metrics endpoint, a bad argument."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import msgspec
import redis

from partitions.rules import StreamTarget
from streams.writer import stream_append
from tests.support.procs import ROOT, Process, free_port, wait_for
from workers.leases import lease_key

KEY = "rtgw:stream:{jobs:0}"


def worker(name: str, tmp: Path, redis_url: str, **env: str) -> Process:
    argv = [sys.executable, "manage.py", "run_worker", "workers.tests.recording.RecordingWorker", "--name", name,
            "--partitions", "1"]  # fmt: skip
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "realtime.settings.test", "REDIS_URL": redis_url,
               "RECORD_FILE": str(tmp / "record.txt"), **env}  # fmt: skip
    return Process(argv, env=environ, log=tmp / f"{name}.log", cwd=ROOT)


def lines(tmp: Path) -> list[str]:
    path = tmp / "record.txt"
    return [" ".join(line.split()[:4]) for line in path.read_text().splitlines()] if path.exists() else []


def test_issue12_item1_sigterm_finishes_the_message_in_hand_acks_it_and_releases_the_lease(
    redis_url: str, tmp_path: Path
) -> None:
    raw = redis.Redis.from_url(redis_url)
    target = StreamTarget("jobs", 0, None, True, None)
    ids = [
        stream_append(target=target, channel="jobs:a", user="u", client="c", data=msgspec.json.encode({"seq": n}))
        for n in range(3)
    ]
    port = free_port()
    first = worker("a", tmp_path, redis_url, HANDLER_SLEEP="0.5", WORKER_METRICS_PORT=str(port))
    try:
        wait_for(lambda: "E a jobs:a 0" in lines(tmp_path), timeout=30, what="the first message handled")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            scraped = response.read().decode()
        assert 'rtgw_worker_handled_total{group="rec",partition="jobs:0"} 1.0' in scraped
        assert 'rtgw_worker_owned_partitions{group="rec"} 1.0' in scraped
        wait_for(lambda: "S a jobs:a 1" in lines(tmp_path), timeout=10, what="the second message started")
        os.killpg(first.popen.pid, signal.SIGTERM)  # mid-handler: it sleeps 0.5 s
        code = first.popen.wait(timeout=20)
    finally:
        first.stop()
    assert code == 0, first.tail()
    assert "handled 2, failed 0, dead-lettered 0" in first.tail()
    assert lines(tmp_path) == ["S a jobs:a 0", "E a jobs:a 0", "S a jobs:a 1", "E a jobs:a 1"]
    # The second is acked; the third, read but never started, stays pending for the next owner.
    assert [p["message_id"].decode() for p in raw.xpending_range(KEY, "rec", "-", "+", 10)] == [ids[2].entry_id]
    assert raw.get(lease_key(KEY, "rec")) is None  # released: the next worker need not wait for the TTL
    assert raw.zcard("rtgw:workers:rec") == 0

    second = worker("b", tmp_path, redis_url)
    try:
        wait_for(lambda: "E b jobs:a 2" in lines(tmp_path), timeout=30, what="b to take the pending one")
    finally:
        assert second.stop() == 0, second.tail()
    assert raw.xpending(KEY, "rec")["pending"] == 0


def test_run_worker_refuses_what_is_not_a_worker(redis_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "run_worker", "workers.tests.recording._append"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "realtime.settings.test", "REDIS_URL": redis_url},
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "workers.tests.recording._append is not a workers.Worker subclass" in result.stderr
