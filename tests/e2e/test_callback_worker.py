"""Restarting the callback service while Centrifugo stays up (a deploy, `supervisorctl restart
callback`): Centrifugo holds idle keep-alive connections to it, which must not hold the old workers
for the whole graceful timeout (realtime/gunicorn_worker.py); publishing works again afterwards."""

from __future__ import annotations

import asyncio
import time

import pytest
from centrifuge import CentrifugeError

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
    # The graceful timeout is 20 s; with idle connections kept, the stop alone took that long (and
    # the restart 23.2 s). A prompt close takes ~1-3 s; 15 leaves room for a loaded machine and
    # still tells the two apart.
    assert took < 15, f"restart took {took:.1f} s"
    assert len(asyncio.run(publish(2))) == 8


def test_issue9_item18_publish_errors_during_a_callback_restart_last_a_bounded_window(gateway: Gateway) -> None:
    """What a client sees while `supervisorctl restart callback` runs: it publishes back to back
    through Centrifugo; every publish that fails (error 100 from Centrifugo: connection refused
    by the stopped callbacks) is timed. The window is from the first failure to the last one."""
    token = gateway.token("frank")

    async def measure() -> tuple[float, int, int]:
        client = await clients.connected(gateway.ws_url, token=token)
        failed_at: list[float] = []
        ok = 0
        restart = asyncio.ensure_future(asyncio.to_thread(gateway.supervisorctl, "restart", "callback"))
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    await client.publish("chat:restart-window", {"n": ok}, timeout=2)
                    ok += 1
                    if restart.done() and failed_at and time.monotonic() - failed_at[-1] > 1:
                        break
                except CentrifugeError:
                    failed_at.append(time.monotonic())
                    await asyncio.sleep(0.01)
            out = await restart
            assert "callback: started" in out, out
        finally:
            await client.disconnect()
        assert failed_at, "no publish failed: the restart was not observed"
        return failed_at[-1] - failed_at[0], len(failed_at), ok

    window, failures, ok = asyncio.run(measure())
    print(f"callback restart: publish errors for {window:.2f} s ({failures} failed, {ok} ok)")
    # README (Deployment) states the measured window; this bound is that figure with room for a
    # loaded CI machine. Before idle connections were closed on SIGTERM, the stop alone took 20 s.
    assert window < 6, f"publishes failed for {window:.2f} s"
