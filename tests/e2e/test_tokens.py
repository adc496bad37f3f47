"""Tokens through the real parts, on a gateway with TOKEN_AUDIENCE/TOKEN_ISSUER set: Centrifugo's
JWT path and the connect proxy agree on every token, the token commands issue what the server
accepts, and no token or payload reaches the logs at the shipped log level."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from centrifuge import Client, ClientEventHandler, ConnectedContext, DisconnectedContext, ErrorContext, ReplyError

from tests.e2e import clients
from tests.support.gateway import SECRETS, Gateway

pytestmark = pytest.mark.e2e

AUDIENCE = "rtgw-e2e-audience"
ISSUER = "https://issuer.e2e.example"
KEY = SECRETS["CENTRIFUGO_TOKEN_HMAC_SECRET_KEY"]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(
        var_dir=tmp_path_factory.mktemp("gateway"), extra_env={"TOKEN_AUDIENCE": AUDIENCE, "TOKEN_ISSUER": ISSUER}
    ).start()
    yield gw
    gw.stop()


def run(coro: Any, timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@dataclass
class Outcome(ClientEventHandler):
    """The first thing that happens to a connection attempt: connected, disconnected or an error."""

    first: asyncio.Future[str] = field(default_factory=asyncio.Future)

    def _set(self, what: str) -> None:
        if not self.first.done():
            self.first.set_result(what)

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self._set("connected")

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self._set(f"disconnected {ctx.code} {ctx.reason}")

    async def on_error(self, ctx: ErrorContext) -> None:
        self._set(f"error {ctx.error}")


async def connect_outcome(url: str, *, token: str = "", data: Any = None) -> str:
    events = Outcome()
    client = Client(url, events=events, token=token, data=data, max_reconnect_delay=1.0)
    await client.connect()
    try:
        return await asyncio.wait_for(events.first, 10)
    finally:
        await client.disconnect()


def _token(claims: dict[str, Any], *, alg: str = "HS256", key: str = KEY) -> str:
    return jwt.encode(claims, key, algorithm=alg)


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "alice", "exp": now + 600, "aud": AUDIENCE, "iss": ISSUER}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def _token_cases() -> list[tuple[str, str, bool]]:
    now = int(time.time())
    return [
        ("HS256", _token(_claims()), True),
        ("HS384", _token(_claims(), alg="HS384"), True),
        ("HS512", _token(_claims(), alg="HS512"), True),
        ("no exp", _token(_claims(exp=None)), True),
        ("iat in the future (not checked)", _token(_claims(iat=now + 3600)), True),
        ("aud as a list holding ours", _token(_claims(aud=["other", AUDIENCE])), True),
        ("expire_at 0 (never refreshed)", _token(_claims(expire_at=0)), True),
        ("expired", _token(_claims(exp=now - 60)), False),
        ("nbf in the future", _token(_claims(nbf=now + 3600)), False),
        ("another key", _token(_claims(), key="another-key-entirely-0123456789abcdef-0123456789abcdef"), False),
        ("alg none", jwt.encode(_claims(), None, algorithm="none"), False),  # type: ignore[arg-type]
        ("HS256 signed, header says RS256", _forged_alg(_token(_claims()), "RS256"), False),
        ("wrong aud", _token(_claims(aud="someone-else")), False),
        ("no aud", _token(_claims(aud=None)), False),
        ("wrong iss", _token(_claims(iss="https://evil.example")), False),
        ("no iss", _token(_claims(iss=None)), False),
        ("no sub", _token(_claims(sub=None)), False),
        ("empty sub", _token(_claims(sub="")), False),
        ("a subscription token (channel claim)", _token(_claims(channel="chat:room1")), False),
        ("not a JWT", "not.a.jwt", False),
    ]


def _forged_alg(token: str, alg: str) -> str:
    """The same payload and signature under a header naming another algorithm."""
    _header, payload, signature = token.split(".")
    header = jwt.utils.base64url_encode(f'{{"alg":"{alg}","typ":"JWT"}}'.encode()).decode()
    return f"{header}.{payload}.{signature}"


def test_issue9_item7_centrifugo_and_the_connect_proxy_accept_and_refuse_the_same_tokens(gateway: Gateway) -> None:
    cases = _token_cases()

    async def scenario() -> list[tuple[str, bool, bool, str, str]]:
        seen = []
        for name, token, _expected in cases:
            via_jwt = await connect_outcome(gateway.ws_url, token=token)  # Centrifugo verifies it
            via_proxy = await connect_outcome(gateway.ws_url, data={"token": token})  # the connect proxy does
            seen.append((name, via_jwt == "connected", via_proxy == "connected", via_jwt, via_proxy))
        return seen

    seen = run(scenario(), timeout=240)
    wrong = [
        f"{name}: expected {'accept' if expected else 'refuse'}; Centrifugo JWT: {jwt_}; connect proxy: {proxy}"
        for (name, _token_, expected), (_, jwt_ok, proxy_ok, jwt_, proxy) in zip(cases, seen, strict=True)
        if jwt_ok != expected or proxy_ok != expected
    ]
    assert not wrong, "\n".join(wrong)


def test_issue9_item8_a_subscription_token_from_the_command_subscribes_when_aud_and_iss_are_set(
    gateway: Gateway,
) -> None:
    channel = f"chat:tokens-{uuid.uuid4().hex[:8]}"
    connection_token = gateway.token("alice")
    issued = gateway.manage("issue_subscription_token", "alice", channel)
    assert issued.returncode == 0, issued.stderr
    subscription_token = issued.stdout.strip()

    async def scenario() -> bool:
        client = await clients.connected(gateway.ws_url, token=connection_token)
        events = clients.SubEvents()
        sub = client.new_subscription(channel, events, token=subscription_token)
        await sub.subscribe()
        ready = asyncio.ensure_future(sub.ready(timeout=10))
        await asyncio.wait([ready, events.unsubscribed], return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(ready, return_exceptions=True)
        subscribed = not events.unsubscribed.done()
        await client.disconnect()
        return subscribed

    assert run(scenario()), "Centrifugo refused the subscription token issue_subscription_token printed"
    # stderr says what the token carries and which settings decided it; no warning: aud/iss are set.
    assert f"aud={AUDIENCE!r} (TOKEN_AUDIENCE), iss={ISSUER!r} (TOKEN_ISSUER)" in issued.stderr
    assert "warning" not in issued.stderr


def test_issue9_item10_no_payload_or_token_in_any_log_at_the_shipped_level(gateway: Gateway) -> None:
    marker = f"payload-marker-{uuid.uuid4().hex}"
    refused = _token(_claims(), key="another-key-entirely-0123456789abcdef-0123456789abcdef")  # bad signature
    refused_in_data = _token(_claims(jti=uuid.uuid4().hex), key="another-key-entirely-0123456789abcdef-0123456789a")
    accepted = gateway.token("alice")

    async def scenario() -> None:
        client = await clients.connected(gateway.ws_url, token=accepted)
        with pytest.raises(ReplyError) as denied:
            await client.publish(f"nowhere-{uuid.uuid4().hex[:6]}:room", {"secret": marker})
        assert denied.value.code == 103
        await client.disconnect()
        assert (await connect_outcome(gateway.ws_url, token=refused)).startswith("disconnected")
        assert (await connect_outcome(gateway.ws_url, data={"token": refused_in_data})).startswith("disconnected")

    run(scenario())
    time.sleep(1)  # supervisord relays its children's output asynchronously
    logs = {path: path.read_text(errors="replace") for path in gateway.var_dir.rglob("*.log")}
    assert logs, f"no log files under {gateway.var_dir}"
    # The refusals did happen and were logged, without the token (the callbacks' INFO line).
    assert any("connect refused: invalid token: Signature verification failed" in text for text in logs.values())
    for path, text in logs.items():
        assert marker not in text, f"{path} holds the denied publication's payload"
        for token in (refused, refused_in_data, accepted):
            assert token.rsplit(".", 1)[1] not in text, f"{path} holds a token's signature"
