"""Redis stops under a running gateway: publishes get a temporary error (never a false ok), /health
says 503 naming Redis, and once Redis is back everything works again without a restart."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from centrifuge import ReplyError

from tests.e2e import clients
from tests.support.gateway import Gateway
from tests.support.procs import wait_for

pytestmark = pytest.mark.e2e


def health(gateway: Gateway) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"{gateway.callback_url}/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_publish_fails_temporarily_while_redis_is_down_and_recovers_after(gateway: Gateway) -> None:
    token = gateway.token("dave")

    async def publish() -> object:
        client = await clients.connected(gateway.ws_url, token=token)
        try:
            return await client.publish("chat:outage", {"n": 1})
        finally:
            await client.disconnect()

    assert asyncio.run(publish()) is not None
    assert "redis: stopped" in gateway.supervisorctl("stop", "redis")

    with pytest.raises(ReplyError) as error:
        asyncio.run(publish())
    assert (error.value.code, error.value.temporary) == (1503, True)
    status, body = health(gateway)
    assert status == 503
    assert body["failing"] == ["redis"]

    assert "started" in gateway.supervisorctl("start", "redis")
    wait_for(lambda: health(gateway)[0] == 200, timeout=15, what="/health to recover")
    assert asyncio.run(publish()) is not None
