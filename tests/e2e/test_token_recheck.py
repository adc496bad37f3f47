"""Issue 13: `revoke_token JTI` asks Centrifugo nothing; the callbacks' checks cut the token's
connections — a subscribed one at its next sub_refresh (SUBSCRIPTION_RECHECK_INTERVAL), an idle
connect-data one at its next refresh (TOKEN_RECHECK_INTERVAL, short here: the refresh path)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import jwt
import pytest

from tests.e2e import clients
from tests.e2e.test_token_revocation import issue_tokens, victim_client, within
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e

RECHECK = 5  # TOKEN_RECHECK_INTERVAL: its minimum
POLL = 0.2  # RULES_POLL_INTERVAL of tests.support.gateway
SUBSCRIPTION_RECHECK = 2  # SUBSCRIPTION_RECHECK_INTERVAL, the default
MARGIN = 3.0  # whole-second expiry rounding, the callback, a shared machine

REVOKE = """
import time
from django.core.management import call_command
started = time.time()
call_command("revoke_token", {jti!r}, "--reason", "e2e")
print(started)
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(var_dir=tmp_path_factory.mktemp("gateway"), extra_env={"TOKEN_RECHECK_INTERVAL": str(RECHECK)})
    gw.start()
    yield gw
    gw.stop()


async def revoke_token(gateway: Gateway, token: str) -> float:
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    result = await asyncio.to_thread(gateway.manage, "shell", "-c", REVOKE.format(jti=jti))
    assert result.returncode == 0, result.stderr
    return float(result.stdout.strip().splitlines()[-1])


async def cut_after_revoke(gateway: Gateway, token: str, path: str, channel: str | None, bound: float) -> float:
    client, events = victim_client(gateway, token, path)
    await client.connect()
    try:
        await within(events.connected.wait(), 10, f"{path}: connected")
        if channel is not None:
            await clients.subscribed(client, channel)
        started = await revoke_token(gateway, token)
        final = await within(events.disconnected, bound + 10, f"{path}: disconnected, drops {events.drops}")
        assert (final.code, final.reason) == (4504, "token revoked")
        return events.dropped_at - started
    finally:
        await client.disconnect()


def test_issue13_item1_revoke_token_cuts_an_idle_connect_data_connection_at_its_next_refresh(
    gateway: Gateway,
) -> None:
    tokens = issue_tokens(gateway, ["idle", "bystander"])
    bound = RECHECK + POLL + MARGIN

    async def scenario() -> float:
        bystander, bystander_events = victim_client(gateway, tokens["bystander"], "data")
        await bystander.connect()
        await within(bystander_events.connected.wait(), 10, "the bystander connects")
        try:
            took = await cut_after_revoke(gateway, tokens["idle"], "data", None, bound)
            # The bystander's connection went through refreshes too, and stays.
            await asyncio.sleep(RECHECK + 1)
            assert not bystander_events.dropped.is_set(), bystander_events.drops
            return took
        finally:
            await bystander.disconnect()

    took = asyncio.run(asyncio.wait_for(scenario(), 90))
    print(f"\nrevoke_token -> disconnect, idle connect-data connection (refresh path): {took:.2f} s")
    assert took < bound


def test_issue13_item1_revoke_token_cuts_a_subscribed_centrifugo_verified_connection_at_sub_refresh(
    gateway: Gateway,
) -> None:
    token = issue_tokens(gateway, ["subscribed"])["subscribed"]
    bound = SUBSCRIPTION_RECHECK + POLL + MARGIN
    took = asyncio.run(asyncio.wait_for(cut_after_revoke(gateway, token, "token", "chat:recheck", bound), 60))
    print(f"\nrevoke_token -> disconnect, subscribed token-field connection (sub_refresh path): {took:.2f} s")
    assert took < bound
