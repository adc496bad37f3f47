"""Issue 12, item 4, through the real parts (Redis, gunicorn, Centrifugo, centrifuge-python clients):
join and leave entries in the log, ordered with the channel's messages; a leave on unsubscribe and
on a client whose process is killed, within the bound (README, "Join and leave entries")."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
import redis

from tests.e2e import clients
from tests.support.gateway import Gateway
from tests.support.procs import wait_for

pytestmark = pytest.mark.e2e

RULES = """
channel_rules:
  - pattern: "room:*"
    subscribe: {access: authenticated}
    publish: {access: authenticated}
    workers: {join_leave: true}
"""
# After the member's last sub_refresh: SUBSCRIPTION_RECHECK_INTERVAL (2) + JOIN_LEAVE_GRACE (1) +
# JOIN_LEAVE_REAP_INTERVAL (1) seconds. Asserted with a margin: the machine is shared.
BOUND = 4.0
MARGIN = 3.0
HEARTBEATS = 6.0  # long enough for the first sub_refresh (within 5 s of the subscribe) and more

# A client in a process of its own, killed with SIGKILL (no close frame: the kernel closes its socket).
CLIENT = """
import asyncio, sys
from centrifuge import Client

async def main():
    client = Client(sys.argv[1], token=sys.argv[2])
    await client.connect()
    sub = client.new_subscription(sys.argv[3])
    await sub.subscribe()
    await sub.ready(timeout=10)
    print("subscribed", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def log_of(store: redis.Redis, channel: str) -> list[tuple[str, dict[str, str]]]:
    found = []
    for key in store.scan_iter("rtgw:stream:*"):
        found += [(i, f) for i, f in store.xrange(key) if f["channel"] == channel]
    return sorted(found, key=lambda e: tuple(int(x) for x in e[0].split("-")))


def types(store: redis.Redis, channel: str) -> list[str]:
    return [fields.get("type", "message") for _, fields in log_of(store, channel)]


def seconds_until_leave(store: redis.Redis, channel: str, since: float) -> float:
    wait_for(lambda: "leave" in types(store, channel), timeout=BOUND + MARGIN + 5, what=f"a leave on {channel}")
    return time.monotonic() - since


@pytest.fixture(scope="module")
def store(gateway: Gateway) -> redis.Redis:
    return redis.Redis.from_url(gateway.redis_url, decode_responses=True)


def test_issue12_item4_switch_off_writes_no_join_and_no_redis_command_on_subscribe(
    gateway: Gateway, store: redis.Redis
) -> None:
    # First in this module: before any rule logs joins, so no reaper runs either.
    token = gateway.token("quiet")

    async def scenario() -> None:
        client = await clients.connected(gateway.ws_url, token=token)
        store.config_resetstat()
        await clients.subscribed(client, "chat:quiet")  # the shipped chat:* rule: the switch off
        await asyncio.sleep(3.5)  # a sub_refresh or two
        stats = store.info("commandstats")
        await client.disconnect()
        written = {name for name in stats if name.split("_")[1].split("|")[0] in {"xadd", "evalsha", "zadd", "eval"}}
        assert written == set(), stats

    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert log_of(store, "chat:quiet") == []
    assert list(store.scan_iter("rtgw:members:*")) == []


def test_issue12_item4_join_message_leave_in_order_and_a_killed_client_leaves(
    gateway: Gateway, store: redis.Redis
) -> None:
    result = gateway.manage("import_rules", "-", input=RULES)
    assert result.returncode == 0, result.stderr
    alice, bob = gateway.token("alice"), gateway.token("bob")

    async def rule_everywhere() -> bool:
        # The import reaches each gunicorn worker on its next poll (RULES_POLL_INTERVAL 0.2 s here):
        # several subscribes in a row allowed, whichever worker answered them.
        probe = await clients.connected(gateway.ws_url, token=alice)
        try:
            return all([(await clients.try_subscribe(probe, f"room:probe{i}"))[0] for i in range(6)])
        finally:
            await probe.disconnect()

    wait_for(lambda: asyncio.run(rule_everywhere()), timeout=30, what="the room:* rule on every worker")

    async def alice_scenario() -> float:
        client = await clients.connected(gateway.ws_url, token=alice)
        sub, _ = await clients.subscribed(client, "room:a")
        assert types(store, "room:a") == ["join"]  # stored before the subscribe was answered
        await client.publish("room:a", {"text": "hi"})
        await asyncio.sleep(HEARTBEATS)
        assert types(store, "room:a") == ["join", "message"]  # heartbeats kept her in: no early leave
        await sub.unsubscribe()
        since = time.monotonic()
        elapsed = await asyncio.to_thread(seconds_until_leave, store, "room:a", since)
        await client.disconnect()
        return elapsed

    after_unsubscribe = asyncio.run(asyncio.wait_for(alice_scenario(), 90))
    log = log_of(store, "room:a")
    assert [f.get("type", "message") for _, f in log] == ["join", "message", "leave"]
    join, message, leave = (fields for _, fields in log)
    assert join["user"] == message["user"] == leave["user"] == "alice"
    assert join["client"] == message["client"] == leave["client"]
    assert (join["data"], leave["data"]) == ('{"info":null}', '{"reason":"gone"}')
    # One partition holds them all (the channel's), so their order is the log's order.
    holding = [k for k in store.scan_iter("rtgw:stream:*") if any(f["channel"] == "room:a" for _, f in store.xrange(k))]
    assert len(holding) == 1, holding

    bob_process = subprocess.Popen(
        [sys.executable, "-c", CLIENT, gateway.ws_url, bob, "room:b"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert bob_process.stdout is not None
        assert bob_process.stdout.readline().strip() == "subscribed"
        wait_for(lambda: types(store, "room:b") == ["join"], timeout=10, what="bob's join")
        time.sleep(HEARTBEATS)
        assert types(store, "room:b") == ["join"]
        os.kill(bob_process.pid, signal.SIGKILL)
        since = time.monotonic()
        after_kill = seconds_until_leave(store, "room:b", since)
    finally:
        bob_process.kill()
        bob_process.wait(10)
    assert types(store, "room:b") == ["join", "leave"]
    assert {f["user"] for _, f in log_of(store, "room:b")} == {"bob"}
    print(f"leave after unsubscribe: {after_unsubscribe:.2f} s; after SIGKILL: {after_kill:.2f} s (bound {BOUND} s)")
    assert after_unsubscribe <= BOUND + MARGIN
    assert after_kill <= BOUND + MARGIN
    assert list(store.zrange(k, 0, -1) for k in store.scan_iter("rtgw:members:*")) in ([], [[]])
