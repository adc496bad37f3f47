"""Restarting the callback service while Centrifugo stays up (a deploy, `supervisorctl restart
callback`): Centrifugo holds idle keep-alive connections to it, which must not hold the old workers
for the whole graceful timeout (realtime/gunicorn_worker.py); publishing works again afterwards."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e import clients
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


def test_a_callback_restart_does_not_wait_for_idle_connections(gateway: Gateway) -> None:
    token = gateway.token("erin")

    async def publish(n: int) -> object:
        client = await clients.connected(gateway.ws_url, token=token)
        try:
            # Several at once: Centrifugo opens several keep-alive connections to the callbacks.
            return await asyncio.gather(*(client.publish(f"chat:restart{i}", {"n": n}) for i in range(8)))
        finally:
            await client.disconnect()

    asyncio.run(publish(1))
    started = time.monotonic()
    out = gateway.supervisorctl("restart", "callback")
    took = time.monotonic() - started
    assert "callback: started" in out, out
    # The graceful timeout is 20 s; with idle connections kept, the stop alone took that long.
    assert took < 8, f"restart took {took:.1f} s"
    assert len(asyncio.run(publish(2))) == 8
