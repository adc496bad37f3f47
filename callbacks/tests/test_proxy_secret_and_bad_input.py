from __future__ import annotations

import pytest
import redis

from callbacks.tests.conftest import NOW, Call

pytestmark = pytest.mark.django_db

PUBLISH = {"user": "42", "channel": "chat:room1", "data": {"text": "hi"}}


@pytest.mark.parametrize("kind", ["connect", "refresh", "subscribe", "sub_refresh", "publish", "rpc"])
@pytest.mark.parametrize("secret", ["", "wrong-secret"])
def test_it_rejects_a_call_without_the_right_secret(call: Call, kind: str, secret: str) -> None:
    status, body = call(kind, PUBLISH, secret=secret)
    assert status == 401
    assert body == {"error": {"code": 107, "message": "missing or wrong proxy secret"}}


def test_a_rejected_publish_changes_nothing_in_redis(call: Call, redis_client: redis.Redis) -> None:
    call("publish", PUBLISH, secret="nope")
    call("publish", b'{"channel": "chat:room1", "data": ', secret=None)
    assert redis_client.keys("*") == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "bad request: JSON is malformed"),
        (b"", "bad request: Input data was truncated"),
        (b"[]", "bad request: Expected `object`, got `array`"),
        (b'{"user": "42", "data": {}}', "bad request: Object missing required field `channel`"),
        (b'{"channel": 5}', "bad request: Expected `str`, got `int` - at `$.channel`"),
        (b'{"channel": ""}', "bad request: Expected `str` of length >= 1 - at `$.channel`"),
        (b'{"channel": "chat:x", "user": null}', "bad request: Expected `str`, got `null` - at `$.user`"),
    ],
)
def test_malformed_publish_bodies_get_107_with_a_precise_error(call: Call, raw: bytes, message: str) -> None:
    status, body = call("publish", raw)
    assert status == 200  # not 400, which Centrifugo would turn into error 100 (temporary) for the client
    assert body["error"]["code"] == 107
    assert body["error"]["message"].startswith(message)


def test_unknown_fields_from_newer_centrifugo_are_ignored(call: Call, redis_url: str) -> None:
    status, body = call("subscribe", {"user": "42", "channel": "chat:x", "labels": {"a": "b"}, "future": 1})
    assert (status, body) == (200, {"result": {"expire_at": NOW + 2}})


def test_get_is_not_allowed(client: object) -> None:
    response = client.get("/centrifugo/publish")  # type: ignore[attr-defined]
    assert response.status_code == 405


def test_an_oversized_body_is_refused_as_json(call: Call, settings: object) -> None:
    settings.CALLBACK_MAX_BODY = 1024  # type: ignore[attr-defined]
    status, body = call("publish", {"user": "42", "channel": "chat:x", "data": {"blob": "x" * 4096}})
    assert status == 200  # the client gets error 106 (a 413 would reach it as error 100)
    assert body == {"error": {"code": 106, "message": "request body too large"}}
