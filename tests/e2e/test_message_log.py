"""The message log through the real parts: what subscribers receive is what the stream holds, in
order, once; idempotent retries; server-side publishing; history for clients."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
import redis
from centrifuge import Client, ReplyError

from tests.e2e import clients
from tests.support.gateway import SECRETS, Gateway

pytestmark = pytest.mark.e2e

PUBLISHERS = 5
PER_PUBLISHER = 2_000  # 10,000 in all


def entries_by_channel(gateway: Gateway, prefix: str) -> dict[str, list[tuple[str, dict[bytes, bytes]]]]:
    store = redis.Redis.from_url(gateway.redis_url)
    found: dict[str, list[tuple[str, dict[bytes, bytes]]]] = {}
    for key in store.scan_iter("rtgw:stream:*"):
        for entry_id, fields in store.xrange(key):
            channel = fields[b"channel"].decode()
            if channel.startswith(prefix):
                found.setdefault(channel, []).append((entry_id.decode(), fields))
    for entries in found.values():
        entries.sort(key=lambda e: tuple(int(x) for x in e[0].split("-")))
    return found


@pytest.mark.timeout(300)  # the scenario's own bound (240 s) must fire first, with its own message
def test_ten_thousand_publications_are_stored_once_in_order_as_delivered(gateway: Gateway) -> None:
    channels = [f"chat:load{i}" for i in range(PUBLISHERS)]
    tokens = [gateway.token(f"pub{i}") for i in range(PUBLISHERS)]
    reader_token = gateway.token("reader")

    async def scenario() -> dict[str, list[tuple[int, str]]]:
        reader = await clients.connected(gateway.ws_url, token=reader_token)
        subs = {ch: (await clients.subscribed(reader, ch))[1] for ch in channels}
        writers = [await clients.connected(gateway.ws_url, token=t) for t in tokens]

        async def publish_all(writer: Client, channel: str) -> None:
            for seq in range(PER_PUBLISHER):
                await writer.publish(channel, {"seq": seq})

        await asyncio.gather(*(publish_all(w, ch) for w, ch in zip(writers, channels, strict=True)))
        received: dict[str, list[tuple[int, str]]] = {}
        for channel, events in subs.items():
            got = received.setdefault(channel, [])
            while len(got) < PER_PUBLISHER:
                pub = await asyncio.wait_for(events.publications.get(), 20)
                got.append((pub.data["seq"], pub.tags["stream_id"]))
        for client in (reader, *writers):
            await client.disconnect()
        return received

    received = asyncio.run(asyncio.wait_for(scenario(), 240))
    stored = entries_by_channel(gateway, "chat:load")
    assert sum(len(entries) for entries in stored.values()) == PUBLISHERS * PER_PUBLISHER
    for channel in channels:
        # In publish order within the channel, each stored once...
        assert [json.loads(fields[b"data"])["seq"] for _, fields in stored[channel]] == list(range(PER_PUBLISHER))
        # ...and what subscribers received carries the id of exactly that entry.
        assert received[channel] == [(json.loads(f[b"data"])["seq"], entry_id) for entry_id, f in stored[channel]]


def test_a_client_retry_with_the_same_idempotency_key_is_stored_and_delivered_once(gateway: Gateway) -> None:
    token = gateway.token("retrier")

    async def scenario() -> tuple[list[object], int]:
        client = await clients.connected(gateway.ws_url, token=token)
        _, events = await clients.subscribed(client, "chat:idem")
        for _ in range(3):
            await client.publish("chat:idem", {"_idempotency_key": "cart-9", "text": "buy"})
        await client.publish("chat:idem", {"text": "after"})
        seen = [(await asyncio.wait_for(events.publications.get(), 10)).data for _ in range(2)]
        await asyncio.sleep(0.3)
        extra = events.publications.qsize()
        await client.disconnect()
        return seen, extra

    seen, extra = asyncio.run(scenario())
    assert seen == [{"_idempotency_key": "cart-9", "text": "buy"}, {"text": "after"}]
    assert extra == 0
    assert len(entries_by_channel(gateway, "chat:idem")["chat:idem"]) == 2


def server_publish(gateway: Gateway, body: dict[str, object], key: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{gateway.callback_url}/api/publish", data=json.dumps(body).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Api-Key {SECRETS['GATEWAY_API_KEY']}")
    request.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_server_publications_share_the_log_and_dedupe_retries(gateway: Gateway) -> None:
    token = gateway.token("listener")

    async def scenario() -> tuple[list[tuple[object, dict[str, str]]], list[tuple[int, dict[str, object]]]]:
        client = await clients.connected(gateway.ws_url, token=token)
        _, events = await clients.subscribed(client, "chat:server")
        loop = asyncio.get_running_loop()
        answers = []
        for _ in range(2):  # the same request twice: a retry after a lost answer
            answers.append(
                await loop.run_in_executor(
                    None, server_publish, gateway, {"channel": "chat:server", "data": {"n": 1}}, "srv-1"
                )
            )
        pub = await asyncio.wait_for(events.publications.get(), 10)
        await asyncio.sleep(0.3)
        assert events.publications.empty(), "the retry was delivered a second time"
        await client.disconnect()
        return [(pub.data, pub.tags)], answers

    delivered, answers = asyncio.run(scenario())
    (status1, first_body), (status2, second_body) = answers
    assert (status1, status2) == (200, 200)
    first, second = first_body["result"], second_body["result"]
    assert (first["duplicate"], second["duplicate"]) == (False, True)  # type: ignore[index]
    assert delivered == [({"n": 1}, {k: first[k] for k in ("stream", "stream_id", "partition")})]  # type: ignore[index]
    [(entry_id, fields)] = entries_by_channel(gateway, "chat:server")["chat:server"]
    assert (entry_id, fields[b"user"]) == (first["stream_id"], b"server")  # type: ignore[index]


def test_history_rpc_returns_what_was_stored_after_an_id_and_is_denied_by_the_rules(gateway: Gateway) -> None:
    token = gateway.token("historian")

    async def scenario() -> tuple[list[str], list[str], list[object], ReplyError]:
        client = await clients.connected(gateway.ws_url, token=token)
        ids = []
        for n in range(4):
            result = await client.publish("chat:hist", {"n": n})
            ids.append(result)
        stored = [e for e, _ in entries_by_channel(gateway, "chat:hist")["chat:hist"]]
        answer = await client.rpc("history", {"channel": "chat:hist", "since": stored[0]})
        anon = await clients.connected(gateway.ws_url)
        with pytest.raises(ReplyError) as denied:
            await anon.rpc("history", {"channel": "chat:hist"})
        await client.disconnect()
        await anon.disconnect()
        messages = answer.data["messages"]
        return stored, [m["id"] for m in messages], [m["data"] for m in messages], denied.value

    stored, ids, data, denied = asyncio.run(scenario())
    assert ids == stored[1:]
    assert data == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert (denied.code, denied.message) == (103, "permission denied")


def test_issue9_item13_server_publish_reaches_centrifugo_on_its_port_without_centrifugo_api_url(
    gateway: Gateway,
) -> None:
    # The fixture starts scripts/run-gateway.sh with Centrifugo on a free (non-default) port and no
    # CENTRIFUGO_API_URL: the callbacks must find Centrifugo's server API from CENTRIFUGO_PORT alone.
    assert "CENTRIFUGO_API_URL" not in gateway.env
    assert gateway.centrifugo_port != 8000
    token = gateway.token("port-listener")

    async def scenario() -> tuple[tuple[int, dict[str, object]], object]:
        client = await clients.connected(gateway.ws_url, token=token)
        _, events = await clients.subscribed(client, "chat:port")
        answer = await asyncio.get_running_loop().run_in_executor(
            None, server_publish, gateway, {"channel": "chat:port", "data": {"n": 13}}, "port-1"
        )
        try:
            data = (await asyncio.wait_for(events.publications.get(), 10)).data
        except TimeoutError:
            data = None  # never delivered
        await client.disconnect()
        return answer, data

    (status, body), data = asyncio.run(scenario())
    assert (status, data) == (200, {"n": 13}), body
