"""Issue 13, item 1 (opt-in): a proxy-only connection token (`issue_connection_token --proxy-only`)
connects only in the connect data, through the connect proxy; Centrifugo refuses it in the `token`
field (it does not have the key), so a revoked one is refused at connect on every path."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from centrifuge import Client, ConnectingContext

from tests.e2e import clients
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


@dataclass
class Attempts(clients.ClientEvents):
    """Counts the client's connection attempts, to see that a refusal does not make it loop."""

    connecting: list[int] = field(default_factory=list)

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        self.connecting.append(ctx.code)


def _jti(gateway: Gateway, token: str) -> str:
    result = gateway.manage(
        "shell", "-c", f"import jwt; print(jwt.decode({token!r}, options={{'verify_signature': False}})['jti'])"
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_issue13_item1_proxy_only_token_connects_in_the_data_only_and_a_revoked_one_is_refused_at_connect(
    gateway: Gateway,
) -> None:
    token = gateway.token("proxy-only-user", "--proxy-only")
    plain = gateway.token("plain-user")  # the default is unchanged: the token field works

    async def scenario() -> None:
        # In the connect data: the connect proxy verifies it with the derived key.
        live, live_events = clients.make_client(gateway.ws_url, data={"token": token})
        await live.connect()
        await asyncio.wait_for(live_events.connected.wait(), 10)
        _, subscribed = await clients.subscribed(live, "chat:proxyonly")
        await live.publish("chat:proxyonly", {"hello": 1})
        assert (await asyncio.wait_for(subscribed.publications.get(), 10)).data == {"hello": 1}

        # In the token field: Centrifugo verifies it with the main key and refuses it (3500, the
        # SDK does not reconnect: one attempt, still disconnected after several reconnect delays).
        events = Attempts()
        client = Client(gateway.ws_url, events=events, token=token, max_reconnect_delay=0.5)
        await client.connect()
        try:
            refused = await asyncio.wait_for(events.disconnected, 10)
            assert (refused.code, refused.reason) == (3500, "invalid token")
            await asyncio.sleep(2)
            assert not events.connected.is_set()
            assert events.connecting == [0], events.connecting  # the first connect only
        finally:
            await client.disconnect()
        await (await clients.connected(gateway.ws_url, token=plain)).disconnect()

        # Revoked (`revoke_token JTI`: no server API call): the live connection is cut by its
        # subscription's re-check, and the token cannot connect again, on either path.
        result = await asyncio.to_thread(gateway.manage, "revoke_token", _jti(gateway, token), "--reason", "e2e")
        assert result.returncode == 0, result.stderr
        cut = await asyncio.wait_for(live_events.disconnected, 20)
        assert (cut.code, cut.reason) == (4504, "token revoked")
        refused = await clients.connect_refused(gateway.ws_url, data={"token": token})
        assert (refused.code, refused.reason) == (4504, "token revoked")
        refused = await clients.connect_refused(gateway.ws_url, token=token)
        assert (refused.code, refused.reason) == (3500, "invalid token")
        await live.disconnect()

    asyncio.run(asyncio.wait_for(scenario(), 90))
