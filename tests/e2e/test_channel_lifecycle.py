"""Issue 12 item 3 through every real part: Redis, gunicorn, Centrifugo, centrifuge-python clients,
the join/leave entries of a `log_join_leave` rule, and a `manage.py run_worker` process. A client
subscribes, stays longer than the idle time, publishes and unsubscribes; another client's process
is killed: the worker sees active, join, message, leave, then inactive once, WORKER_CHANNEL_IDLE_SECONDS
after the leave (never while a member is in), for each channel."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e import clients
from tests.e2e.test_join_leave import CLIENT, RULES
from tests.support.gateway import Gateway
from tests.support.procs import ROOT, Process, wait_for

pytestmark = pytest.mark.e2e

IDLE = 2.0


def record(path: Path, channel: str) -> list[list[str]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.split() for line in lines if line.split()[2] == channel]


def kinds(path: Path, channel: str) -> list[str]:
    return [line[0] for line in record(path, channel)]


def test_issue12_item3_a_real_client_joins_publishes_leaves_and_the_channel_goes_inactive_once(
    gateway: Gateway,
) -> None:
    result = gateway.manage("import_rules", "-", input=RULES)
    assert result.returncode == 0, result.stderr
    alice, bob = gateway.token("alice"), gateway.token("bob")
    path = gateway.var_dir / "lifecycle.txt"
    worker = Process(
        [sys.executable, "manage.py", "run_worker", "workers.tests.lifecycle_workers.RoomRecorder", "--name", "w1"],
        env={**gateway.env, "REDIS_URL": gateway.redis_url, "RECORD_FILE": str(path),
             "WORKER_CHANNEL_IDLE_SECONDS": str(IDLE)},
        log=gateway.var_dir / "lifecycle-worker.log", cwd=ROOT,
    )  # fmt: skip

    async def rule_everywhere() -> bool:
        probe = await clients.connected(gateway.ws_url, token=alice)
        try:
            return all([(await clients.try_subscribe(probe, f"room:probe{i}"))[0] for i in range(6)])
        finally:
            await probe.disconnect()

    async def alice_scenario() -> None:
        client = await clients.connected(gateway.ws_url, token=alice)
        sub, _ = await clients.subscribed(client, "room:life")
        await asyncio.sleep(IDLE + 3)  # a member: the channel must not go idle meanwhile
        await client.publish("room:life", {"text": "hi"})
        await asyncio.sleep(1)
        await sub.unsubscribe()
        await client.disconnect()

    try:
        wait_for(lambda: asyncio.run(rule_everywhere()), timeout=30, what="the room:* rule on every worker")
        asyncio.run(asyncio.wait_for(alice_scenario(), 60))
        bob_process = subprocess.Popen(
            [sys.executable, "-c", CLIENT, gateway.ws_url, bob, "room:cut"],
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            assert bob_process.stdout is not None
            assert bob_process.stdout.readline().strip() == "subscribed"
            wait_for(lambda: "join" in kinds(path, "room:cut"), timeout=30, what="the worker to see bob join")
            os.kill(bob_process.pid, signal.SIGKILL)
        finally:
            bob_process.kill()
            bob_process.wait(10)
        for channel in ("room:life", "room:cut"):
            wait_for(lambda c=channel: "inactive" in kinds(path, c), timeout=40, what=f"{channel} inactive")  # type: ignore[misc]
        time.sleep(IDLE + 1.5)  # room for a second inactive, if there were one
    finally:
        assert worker.stop() == 0, worker.tail()
    assert kinds(path, "room:life") == ["active", "join", "message", "leave", "inactive"]
    assert kinds(path, "room:cut") == ["active", "join", "leave", "inactive"]
    for channel in ("room:life", "room:cut"):
        events = {line[0]: line for line in record(path, channel)}
        assert events["active"][4] == "join"  # active from the first join
        leave_ms = int(events["leave"][5])  # the leave entry's time (its id's ms)
        assert int(events["inactive"][4]) == leave_ms  # idle counted from the last member's leave
        waited = float(events["inactive"][3]) - leave_ms / 1000
        print(f"{channel}: inactive {waited:.2f} s after the leave entry (idle {IDLE} s)")
        assert waited >= IDLE - 0.1
    # alice stayed IDLE + 3 s before publishing: no inactive came while she was a member.
    life = record(path, "room:life")
    assert float(life[2][3]) - float(life[1][3]) >= IDLE + 2
