"""The acceptance path through the real parts: Centrifugo v6.9.1, gunicorn + Django, Redis."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
import redis
from centrifuge import ReplyError

from tests.e2e import clients
from tests.support.gateway import SECRETS, Gateway

pytestmark = pytest.mark.e2e


def run(coro: object, timeout: float = 30) -> object:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


def test_a_token_client_receives_what_another_publishes_with_the_stream_id(gateway: Gateway) -> None:
    alice = gateway.token("alice")
    bob = gateway.token("bob", "--meta", '{"roles": ["writer"]}')

    async def scenario() -> tuple[object, object]:
        reader = await clients.connected(gateway.ws_url, token=alice)  # JWT verified by Centrifugo
        writer = await clients.connected(gateway.ws_url, data={"token": bob})  # verified by the connect proxy
        _, events = await clients.subscribed(reader, "chat:room1")
        await writer.publish("chat:room1", {"text": "hello", "n": 1})
        pub = await asyncio.wait_for(events.publications.get(), 10)
        await reader.disconnect()
        await writer.disconnect()
        return pub

    pub = run(scenario())
    assert pub.data == {"text": "hello", "n": 1}  # type: ignore[attr-defined]
    tags = pub.tags  # type: ignore[attr-defined]
    store = redis.Redis.from_url(gateway.redis_url, decode_responses=True)
    [(entry_id, fields)] = store.xrange(tags["stream"], min=tags["stream_id"], max=tags["stream_id"])
    assert entry_id == tags["stream_id"]
    assert fields["channel"] == "chat:room1"
    assert fields["user"] == "bob"
    # The publish proxy runs with binary_encoding: the bytes the client sent (json.dumps spacing),
    # not the compacted JSON Centrifugo's JSON proxy body used to carry.
    assert fields["data"] == '{"text": "hello", "n": 1}'
    assert tags["stream"] == f"rtgw:stream:{{chat:{tags['partition']}}}"


def test_an_anonymous_client_reads_public_but_cannot_publish_or_read_other_channels(gateway: Gateway) -> None:
    async def scenario() -> tuple[ReplyError, int]:
        anon = await clients.connected(gateway.ws_url)
        await clients.subscribed(anon, "public:news")
        with pytest.raises(ReplyError) as publish_error:
            await anon.publish("public:news", {"text": "spam"})
        refused = await clients.subscribe_refused(anon, "secret:x")
        await anon.disconnect()
        return publish_error.value, refused.code

    error, code = run(scenario())  # type: ignore[misc]
    assert (error.code, error.message) == (103, "permission denied")
    assert code == 103


def test_a_channel_in_a_namespace_centrifugo_was_never_told_about_reaches_the_rules(gateway: Gateway) -> None:
    """No 102 'unknown channel': every channel goes to the proxy, and the rules deny this one."""

    async def scenario() -> int:
        client = await clients.connected(gateway.ws_url, token=gateway.token("carol"))
        refused = await clients.subscribe_refused(client, "brandnew:room")
        await client.disconnect()
        return refused.code

    assert run(scenario()) == 103


def _hs256(claims: dict[str, object], key: str = SECRETS["CENTRIFUGO_TOKEN_HMAC_SECRET_KEY"]) -> str:
    return jwt.encode(claims, key, algorithm="HS256")


EXPIRED = {"sub": "mallory", "exp": int(time.time()) - 60}
FOREIGN_KEY = "some-other-deployment-key-0123456789abcdef-0123456789abcdef-012"


@pytest.mark.parametrize(
    ("how", "token", "expected_code"),
    [
        ("connect data, expired", _hs256(EXPIRED), 4502),
        ("connect data, other key", _hs256({"sub": "mallory", "exp": 4102444800}, FOREIGN_KEY), 4501),
        ("connection JWT, other key", _hs256({"sub": "mallory", "exp": 4102444800}, FOREIGN_KEY), 3500),
    ],
)
def test_a_client_with_an_expired_or_foreign_token_is_refused(
    gateway: Gateway, how: str, token: str, expected_code: int
) -> None:
    if how.startswith("connect data"):
        ctx = run(clients.connect_refused(gateway.ws_url, data={"token": token}))
    else:
        ctx = run(clients.connect_refused(gateway.ws_url, token=token))
    assert ctx.code == expected_code  # type: ignore[attr-defined]


def test_an_expired_connection_jwt_is_refused(gateway: Gateway) -> None:
    async def scenario() -> str:
        client, events = clients.make_client(gateway.ws_url, token=_hs256(EXPIRED))
        await client.connect()
        done = await asyncio.wait_for(events.disconnected, 10)
        await client.disconnect()
        return f"{done.code} {done.reason}"

    # Centrifugo answers 109 "token expired"; with no get_token to renew it, the SDK gives up
    # with its own code 1 "unauthorized" instead of reconnecting forever.
    assert run(scenario()) == "1 unauthorized"
