"""Disconnect and ban on the multi-instance topology (issue 13, item 2; acceptance "Ban"): two
Centrifugo nodes on the Redis engine, two callback replicas. A user connected to both nodes on every
path (a token in the `token` field, which Centrifugo verifies itself; a token in the connect data
and a Django session cookie, which the connect proxy checks) is dropped on both nodes by one
`manage.py ban`, before the command returns; their connects are then refused on both nodes (the
`token`-field one at its first subscribe: Centrifugo OSS calls no hook at connect); an unrelated
user is untouched; `manage.py unban` lets them connect again."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from centrifuge import Client, ConnectingContext, DisconnectedContext

from devcluster.topology import Cluster
from tests.e2e import clients
from tests.support.gateway import SECRETS

pytestmark = pytest.mark.cluster

CHANNEL = "chat:ban-room"
BANNED, PLAIN = 4505, 4005
# Longer than a WebSocket close frame's 123 bytes of reason: sent whole, Centrifugo would send no
# close frame and the SDK would reconnect, whatever the code.
REASON = "spam in " + "chat:lobby " * 15
CLOSE_REASON = f"banned: {REASON}"[:123]
MAKE_SESSION = """
from django.contrib.auth import get_user_model
from django.test import Client
user = get_user_model().objects.create_user("mallory", password="pw-for-tests-only")
client = Client()
client.force_login(user)
print("SESSION", user.pk, client.session.session_key)
"""


def token(user: str) -> str:
    now = int(time.time())
    claims = {"sub": user, "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex}
    return str(jwt.encode(claims, SECRETS["CENTRIFUGO_TOKEN_HMAC_SECRET_KEY"], algorithm="HS256"))


@dataclass
class Events(clients.ClientEvents):
    """Also the reconnecting disconnects (4000-4499), which the SDK reports as `connecting`."""

    dropped: asyncio.Future[ConnectingContext] = field(default_factory=asyncio.Future)
    disconnected_at: float = 0.0

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self.disconnected_at = self.disconnected_at or time.monotonic()
        await super().on_disconnected(ctx)

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        if ctx.code != 0 and not self.dropped.done():  # 0: the first connect
            self.dropped.set_result(ctx)


@dataclass(frozen=True)
class Way:
    """How a client connects: a token in the `token` field, in the connect data, or a session."""

    name: str
    token: str = ""
    data: Any = None
    headers: dict[str, str] | None = None


def ways(user: str, session_key: str) -> list[Way]:
    return [
        Way("token field", token=token(user)),
        Way("connect data", data={"token": token(user)}),
        Way("session cookie", headers={"Cookie": f"theme=dark; sessionid={session_key}"}),
    ]


def client_for(url: str, way: Way) -> tuple[Client, Events]:
    events = Events()
    client = Client(url, events=events, token=way.token, data=way.data, headers=way.headers, max_reconnect_delay=1.0)
    return client, events


async def connect(url: str, way: Way) -> tuple[Client, Events]:
    client, events = client_for(url, way)
    await client.connect()
    await asyncio.wait_for(events.connected.wait(), 10)
    return client, events


async def refused(url: str, way: Way) -> tuple[int, str]:
    """The disconnect a connect gets; the `token`-field connect is let in by Centrifugo and meets
    the ban at its first subscribe."""
    client, events = client_for(url, way)
    try:
        await client.connect()
        if way.token:
            await asyncio.wait_for(events.connected.wait(), 10)
            await client.new_subscription(CHANNEL).subscribe()
        ctx = await asyncio.wait_for(events.disconnected, 10)
        return ctx.code, ctx.reason
    finally:
        await client.disconnect()


async def admitted(url: str, way: Way) -> None:
    """Connects and subscribes; retried for a while, as every replica reloads within the poll."""
    deadline = time.monotonic() + 15
    while True:
        client, events = client_for(url, way)
        try:
            await client.connect()
            await asyncio.wait_for(events.connected.wait(), 5)
            await clients.subscribed(client, CHANNEL)
            return
        except Exception:  # refused (a timeout, the subscription's error): not yet
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
        finally:
            await client.disconnect()


def manage(cluster: Cluster, *args: str) -> tuple[int, str, float]:
    """(exit code, output, monotonic time it returned): a command with node 1's server API."""
    done = cluster.manage(*args, env={"CENTRIFUGO_API_URL": f"http://127.0.0.1:{cluster.ports.nodes[0]}"})
    return done.returncode, done.stdout + done.stderr, time.monotonic()


@pytest.fixture(scope="module")
def mallory(cluster: Cluster) -> tuple[str, str]:
    """(user id, session key) of a Django user: the same id on every path."""
    made = cluster.manage("shell", "-c", MAKE_SESSION)
    assert made.returncode == 0, made.stderr
    _, pk, session_key = next(line for line in made.stdout.splitlines() if line.startswith("SESSION ")).split()
    return pk, session_key


def test_issue13_item2_ban_drops_live_connections_on_both_nodes_refuses_connects_and_unban_restores(
    cluster: Cluster, mallory: tuple[str, str]
) -> None:
    user, session_key = mallory
    nodes = [cluster.node_ws_url(0), cluster.node_ws_url(1)]

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        # Mallory on both nodes on every path, each subscribed; Bob on both nodes, subscribed.
        live = [(node, way, *await connect(node, way)) for node in nodes for way in ways(user, session_key)]
        for _, _, client, _ in live:
            await clients.subscribed(client, CHANNEL)
        bob = [await clients.connected(node, token=token("bob")) for node in nodes]
        bob_subs = [await clients.subscribed(client, CHANNEL) for client in bob]
        try:
            started = time.monotonic()
            code, output, returned = await asyncio.to_thread(manage, cluster, "ban", user, "--reason", REASON)
            assert code == 0, output
            drops = [await asyncio.wait_for(events.disconnected, 10) for *_, events in live]
            seen["ban"] = (started, returned, output, [events.disconnected_at for *_, events in live])
            seen["drops"] = [
                (node, way.name, ctx.code, ctx.reason) for (node, way, *_), ctx in zip(live, drops, strict=True)
            ]
            # Bob: still connected on both nodes, still receiving.
            seen["bob_state"] = [client.state.value for client in bob]
            await bob[0].publish(CHANNEL, {"text": "still here"})
            seen["bob_got"] = [(await asyncio.wait_for(events.publications.get(), 10)).data for _, events in bob_subs]
            # Refused on both nodes, on every path (the command returned: every replica has the ban).
            seen["refused"] = [
                (node, way.name, await refused(node, way)) for node in nodes for way in ways(user, session_key)
            ]
            seen["bob_still"] = [client.state.value for client in bob]
            code, output, _ = await asyncio.to_thread(manage, cluster, "unban", user)
            assert code == 0, output
            for node in nodes:
                for way in ways(user, session_key):
                    await admitted(node, way)
        finally:
            await asyncio.gather(*(client.disconnect() for client in bob))
            await asyncio.gather(*(client.disconnect() for _, _, client, _ in live))
        return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), 180))
    started, returned, output, dropped_at = seen["ban"]
    print(f"\nban command: {returned - started:.2f} s from start to exit (Django start-up included): {output.strip()}")
    print("drops, s before the command returned:", ", ".join(f"{returned - at:.2f}" for at in dropped_at))
    # At once: every connection was closed by the first sweep, before the command returned (it
    # returns after its second sweep, 2 x RULES_POLL_INTERVAL later).
    assert all(started < at < returned for at in dropped_at), (started, dropped_at, returned)
    assert [(code, reason) for *_, code, reason in seen["drops"]] == [(BANNED, CLOSE_REASON)] * 6, seen["drops"]
    assert {(node, way) for node, way, *_ in seen["drops"]} == {(n, w.name) for n in nodes for w in ways(user, "")}
    assert seen["bob_state"] == seen["bob_still"] == ["connected", "connected"]
    assert seen["bob_got"] == [{"text": "still here"}] * 2
    assert [answer for *_, answer in seen["refused"]] == [(BANNED, CLOSE_REASON)] * 6, seen["refused"]


def test_issue13_item2_disconnect_drops_a_user_on_both_nodes_who_then_reconnects(cluster: Cluster) -> None:
    nodes = [cluster.node_ws_url(0), cluster.node_ws_url(1)]

    async def scenario() -> tuple[list[tuple[int, str]], list[str], list[str], str]:
        trudy = [await connect(node, Way("connect data", data={"token": token("trudy")})) for node in nodes]
        bob = [await clients.connected(node, token=token("bob")) for node in nodes]
        try:
            code, output, _ = await asyncio.to_thread(manage, cluster, "disconnect", "trudy", "--reason", "re-login")
            assert code == 0, output
            drops = [await asyncio.wait_for(events.dropped, 10) for _, events in trudy]
            for client, events in trudy:  # 4005 is a reconnecting code: the SDK is back by itself
                events.connected.clear()
                if client.state.value != "connected":
                    await asyncio.wait_for(events.connected.wait(), 10)
            return (
                [(d.code, d.reason) for d in drops],
                [c.state.value for c, _ in trudy],
                [c.state.value for c in bob],
                output,
            )
        finally:
            await asyncio.gather(*(client.disconnect() for client in bob), *(c.disconnect() for c, _ in trudy))

    drops, trudy_states, bob_states, output = asyncio.run(asyncio.wait_for(scenario(), 90))
    assert drops == [(PLAIN, "disconnected: re-login")] * 2
    assert trudy_states == ["connected", "connected"]
    assert bob_states == ["connected", "connected"]
    assert "disconnected every connection of 'trudy'" in output
