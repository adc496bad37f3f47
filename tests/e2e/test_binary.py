"""Binary publications through the real parts (issue 9, item 5b): protobuf clients of
centrifuge-python publish bytes that are not JSON; Centrifugo's proxies run with binary_encoding,
so they reach the rules instead of failing with 100. Allowed: stored enc=binary and delivered byte
for byte; JSON-only channel: 107; denied: 103; never 100."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import redis
from centrifuge import ReplyError

from tests.e2e import clients
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e

RULES = """
channel_rules:
  - pattern: "bin:*"
    subscribe: {access: authenticated}
    publish: {access: authenticated}
    allow_binary: true
"""
BYTES = b"\x01\xff\x00"


def run(coro: object, timeout: float = 30) -> object:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


async def publish_error(client: object, channel: str, data: bytes) -> tuple[int, str, bool]:
    with pytest.raises(ReplyError) as refused:
        await client.publish(channel, data)  # type: ignore[attr-defined]
    return refused.value.code, refused.value.message, refused.value.temporary


def test_issue9_item5b_protobuf_clients_publish_binary_where_allowed_and_get_103_or_107_elsewhere(
    gateway: Gateway,
) -> None:
    result = gateway.manage("import_rules", "-", input=RULES)
    assert result.returncode == 0, result.stderr
    writer_token, reader_token = gateway.token("pb-writer"), gateway.token("pb-reader")

    async def scenario() -> dict[str, object]:
        reader = await clients.connected(gateway.ws_url, token=reader_token, protobuf=True)
        # Token in the connect data: with binary_encoding the connect proxy gets it as b64data.
        writer = await clients.connected(
            gateway.ws_url, data=json.dumps({"token": writer_token}).encode(), protobuf=True
        )
        _, events = await clients.subscribed(reader, "bin:raw")
        await writer.publish("bin:raw", BYTES)
        pub = await asyncio.wait_for(events.publications.get(), 10)
        outcome = {
            "pub": pub,
            "json_only": await publish_error(writer, "chat:pb", BYTES),
            "denied": await publish_error(writer, "secret:pb", BYTES),
        }
        await writer.publish("chat:pb", b'{"n":1}')  # JSON bytes from a protobuf client: a JSON publication
        await reader.disconnect()
        await writer.disconnect()
        return outcome

    outcome = run(scenario())
    pub = outcome["pub"]
    assert pub.data == BYTES  # type: ignore[attr-defined]
    tags = pub.tags  # type: ignore[attr-defined]
    store = redis.Redis.from_url(gateway.redis_url)
    [(_, fields)] = store.xrange(tags["stream"], min=tags["stream_id"], max=tags["stream_id"])
    assert (fields[b"data"], fields[b"enc"], fields[b"user"]) == (BYTES, b"binary", b"pb-writer")
    assert outcome["json_only"] == (107, "this channel accepts JSON publications only", False)
    assert outcome["denied"] == (103, "permission denied", False)
    chat = [f for key in store.scan_iter("rtgw:stream:*") for _, f in store.xrange(key) if f[b"channel"] == b"chat:pb"]
    assert [(f[b"data"], f.get(b"enc")) for f in chat] == [(b'{"n":1}', None)]


def test_issue9_item5b_a_json_client_reads_history_holding_a_binary_entry(gateway: Gateway) -> None:
    gateway.manage("import_rules", "-", input=RULES)
    token = gateway.token("historian-b")

    async def scenario() -> tuple[object, object]:
        writer = await clients.connected(gateway.ws_url, token=token, protobuf=True)
        await writer.publish("bin:hist", BYTES)
        await writer.publish("bin:hist", b'{"n":2}')
        reader = await clients.connected(gateway.ws_url, token=token)  # JSON protocol
        answer = await reader.rpc("history", {"channel": "bin:hist"})
        # ...but it may not subscribe: the first binary publication would disconnect it (1007).
        refused = await clients.subscribe_refused(reader, "bin:hist")
        assert (refused.code, refused.reason) == (
            107, "this channel carries binary publications: subscribe with the protobuf protocol"
        )  # fmt: skip
        pb_answer = await writer.rpc("history", json.dumps({"channel": "bin:hist"}).encode())
        await reader.disconnect()
        await writer.disconnect()
        return answer.data, json.loads(pb_answer.data)

    json_data, pb_data = run(scenario())
    for data in (json_data, pb_data):
        messages = data["messages"]  # type: ignore[index]
        assert [(m.get("b64data"), m.get("data")) for m in messages] == [
            (base64.b64encode(BYTES).decode(), None),
            (None, {"n": 2}),
        ]
