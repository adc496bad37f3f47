"""POST /api/publish without Centrifugo running: everything up to the broadcast. The broadcast
itself is covered end to end in tests/e2e/test_message_log.py."""

from __future__ import annotations

import json

import pytest
import redis
from django.test import Client

from tests.support.procs import free_port

pytestmark = pytest.mark.django_db

KEY = "server-api-key-for-tests"


@pytest.fixture(autouse=True)
def _api(settings: object) -> None:
    settings.GATEWAY_API_KEY = KEY  # type: ignore[attr-defined]
    settings.CENTRIFUGO_API_URL = f"http://127.0.0.1:{free_port()}"  # type: ignore[attr-defined]  # nobody listens


def post(client: Client, body: object, key: str | None = KEY, **headers: str) -> tuple[int, dict[str, object]]:
    if key is not None:
        headers["Authorization"] = f"Api-Key {key}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/api/publish", data=raw, content_type="application/json", headers=headers)
    return response.status_code, json.loads(response.content)


@pytest.mark.parametrize(
    ("key", "message"),
    [(None, "send 'Authorization: Api-Key <key>'"), ("wrong", "wrong API key")],
)
def test_it_needs_the_api_key(client: Client, redis_client: redis.Redis, key: str | None, message: str) -> None:
    assert post(client, {"channel": "chat:x", "data": 1}, key=key) == (
        401,
        {"error": {"code": 107, "message": message}},
    )
    assert redis_client.keys("rtgw:stream:*") == []


def test_without_a_configured_key_the_api_is_off(client: Client, settings: object) -> None:
    settings.GATEWAY_API_KEY = None  # type: ignore[attr-defined]
    status, body = post(client, {"channel": "chat:x", "data": 1})
    assert (status, body["error"]["message"]) == (401, "the server API is disabled: GATEWAY_API_KEY is not set")  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "bad request: Input data was truncated"),
        ({"data": 1}, "bad request: Object missing required field `channel`"),
        ({"channel": "chat:x"}, "bad request: Object missing required field `data`"),
        ({"channel": "chat:x", "data": 1, "extra": 2}, "bad request: Object contains unknown field `extra`"),
    ],
)
def test_bad_bodies_get_400(client: Client, body: object, message: str) -> None:
    status, answer = post(client, body)
    assert (status, answer["error"]["message"]) == (400, message)  # type: ignore[index]


def test_the_rules_apply_to_server_publications(client: Client, redis_client: redis.Redis) -> None:
    status, body = post(client, {"channel": "secret:x", "data": 1})
    assert (status, body) == (403, {"error": {"code": 103, "message": "permission denied", "temporary": False}})


def test_stored_but_not_broadcast_is_a_temporary_502_and_a_retry_stores_nothing_new(
    client: Client, redis_client: redis.Redis
) -> None:
    first = post(client, {"channel": "chat:x", "data": {"n": 1}}, **{"Idempotency-Key": "k-1"})
    again = post(client, {"channel": "chat:x", "data": {"n": 1}}, **{"Idempotency-Key": "k-1"})
    assert first[0] == again[0] == 502
    assert first[1]["error"] == {  # type: ignore[index]
        "code": 1502, "message": "stored but not broadcast; retry with the same idempotency key", "temporary": True,
    }  # fmt: skip
    assert first[1]["tags"] == again[1]["tags"]
    assert redis_client.xlen(first[1]["tags"]["stream"]) == 1  # type: ignore[index]
