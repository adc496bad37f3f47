"""Trusted enrichment through the real parts (issue 12 item 6): centrifuge-python clients, Centrifugo
v6.9.1, the callbacks under gunicorn, Redis. On a channel whose rule sets `workers: {enrich: true}`
a subscriber receives the envelope with the sender Centrifugo vouches for; a forged `user` in the
payload stays inside `data`; the log keeps the payload; other channels are unchanged."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis

from tests.e2e import clients
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e

RULES = """
channel_rules:
  - pattern: "trusted:*"
    subscribe: {access: authenticated}
    publish: {access: authenticated}
    workers: {enrich: true}
"""


def run(coro: Any, timeout: float = 30) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_issue12_item6_a_subscriber_receives_the_enriched_shape_with_the_real_sender(gateway: Gateway) -> None:
    result = gateway.manage("import_rules", "-", input=RULES)
    assert result.returncode == 0, result.stderr
    # Mallory's token names her; a JWT Centrifugo verifies itself (the publish proxy sees its meta).
    mallory_token = gateway.token("mallory", "--info", '{"name": "Mallory"}')
    reader_token = gateway.token("reader")
    forged = {"text": "pay me", "user": "admin", "sender": {"user": "admin", "name": "The Bank"}}

    async def scenario() -> tuple[Any, Any, str, Any]:
        reader = await clients.connected(gateway.ws_url, token=reader_token)
        mallory = await clients.connected(gateway.ws_url, token=mallory_token)
        # and through the connect proxy: the token in the connect data, info copied into meta there
        proxied = await clients.connected(gateway.ws_url, data={"token": mallory_token})
        try:
            _, events = await clients.subscribed(reader, "trusted:room")
            _, plain = await clients.subscribed(reader, "chat:plain")
            await mallory.publish("trusted:room", forged)
            enriched = await asyncio.wait_for(events.publications.get(), 10)
            await proxied.publish("trusted:room", {"n": 2})
            via_proxy = await asyncio.wait_for(events.publications.get(), 10)
            await mallory.publish("chat:plain", forged)
            unchanged = await asyncio.wait_for(plain.publications.get(), 10)
            return enriched, via_proxy, mallory.client_id, unchanged
        finally:
            await asyncio.gather(reader.disconnect(), mallory.disconnect(), proxied.disconnect())

    enriched, via_proxy, mallory_client, unchanged = run(scenario())
    stream_id = enriched.tags["stream_id"]
    assert enriched.data == {
        "data": forged,
        "sender": {"user": "mallory", "client": mallory_client, "name": "Mallory"},
        "time": int(stream_id.split("-")[0]),
        "id": stream_id,
    }
    assert via_proxy.data["sender"]["user"] == "mallory"
    assert via_proxy.data["sender"]["name"] == "Mallory"
    assert via_proxy.data["data"] == {"n": 2}
    assert unchanged.data == forged  # the switch is off for chat:*: exactly what the client sent

    log = redis.Redis.from_url(gateway.redis_url, decode_responses=True)
    [(_, fields)] = log.xrange(enriched.tags["stream"], stream_id, stream_id)
    assert json.loads(fields["data"]) == forged  # the log keeps the payload, not the envelope
    assert fields["user"] == "mallory"
