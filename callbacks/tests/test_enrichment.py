"""Trusted enrichment (issue 12 item 6): the publish proxy's answer on a channel whose rule sets
`enrich`, with the exact bodies Centrifugo v6.9.1 sends (internal/proxy/publish_handler.go: user,
client, channel, data or b64data, meta), on both transports (the `call` fixture)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client

from callbacks import server_api
from callbacks.tests.conftest import CLIENT_ID, Call
from callbacks.tests.test_presence_api import FakeCentrifugo
from callbacks.tokens import connection_token_issue
from partitions import models, services
from partitions.store import rules_store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _redis(redis_url: str) -> None:
    """Every publish here is stored: a Redis for each test (conftest.py's)."""


TOKEN_META = {"roles": [], "auth": "token", "name": "Ann"}


def enrich(pattern: str = "chat:*", **fields: Any) -> models.ChannelRule:
    rule = models.ChannelRule.objects.get(pattern=pattern)
    rule.enrich = True
    for name, value in fields.items():
        setattr(rule, name, value)
    services.rule_save(actor="test", rule=rule)
    rules_store.invalidate()  # what the commit does (a test's transaction is never committed)
    return rule


def publish(call: Call, data: Any, *, user: str = "42", meta: Any = None, channel: str = "chat:room1") -> Any:
    body: dict[str, Any] = {"user": user, "channel": channel, "data": data}
    if meta is not None:
        body["meta"] = meta
    status, answer = call("publish", body)
    assert status == 200
    return answer


def test_issue12_item6_subscribers_get_the_envelope_and_the_log_keeps_the_payload(
    call: Call, redis_client: redis.Redis
) -> None:
    enrich()
    before = int(time.time() * 1000)
    result = publish(call, {"text": "hi"}, meta=TOKEN_META)["result"]
    tags = result["tags"]
    assert result["data"] == {
        "data": {"text": "hi"},
        "sender": {"user": "42", "client": CLIENT_ID, "name": "Ann"},
        "time": int(tags["stream_id"].split("-")[0]),
        "id": tags["stream_id"],
    }
    assert before <= result["data"]["time"] <= int(time.time() * 1000) + 1000  # Redis's clock, same machine
    [(_, fields)] = redis_client.xrange(tags["stream"])
    assert fields["data"] == '{"text": "hi"}'  # as the client sent it, not the envelope
    assert fields["user"] == "42"


def test_issue12_item6_forged_sender_fields_stay_inside_data(call: Call) -> None:
    enrich()
    forged = {"user": "admin", "client": "x", "sender": {"user": "admin", "name": "The Boss"}, "name": "Boss"}
    raw = json.dumps(forged).encode()
    # b64data, as Centrifugo sends every publication with the proxy's binary_encoding on
    status, answer = call(
        "publish",
        {
            "user": "mallory",
            "channel": "chat:room1",
            "b64data": base64.b64encode(raw).decode(),
            "meta": {"auth": "token"},
        },
    )
    assert status == 200
    envelope = answer["result"]["data"]
    assert envelope["sender"] == {"user": "mallory", "client": CLIENT_ID, "name": None}
    assert envelope["data"] == forged
    assert set(envelope) == {"data", "sender", "time", "id"}


def test_issue12_item6_a_name_in_the_payload_or_a_meta_name_that_is_not_text_is_never_the_sender(call: Call) -> None:
    enrich()
    answer = publish(call, {"name": "Boss"}, meta={"roles": ["editor"], "auth": "jwt", "name": {"forged": True}})
    assert answer["result"]["data"]["sender"]["name"] is None
    # the odd `name` did not cost the connection its roles: a rule on roles still decides
    rule = models.ChannelRule.objects.get(pattern="chat:*")
    rule.publish_access, rule.publish_roles = "roles", "editor"
    services.rule_save(actor="test", rule=rule)
    rules_store.invalidate()
    again = publish(call, {"n": 2}, meta={"roles": ["editor"], "name": 7})
    assert again["result"]["data"]["data"] == {"n": 2}


def test_issue12_item6_switch_off_the_answer_is_unchanged(call: Call) -> None:
    result = publish(call, {"text": "hi"}, meta=TOKEN_META)["result"]
    assert set(result) == {"tags"}  # no `data`: Centrifugo broadcasts what the client sent


def test_issue12_item6_an_idempotent_retry_gets_the_same_envelope(call: Call, redis_client: redis.Redis) -> None:
    enrich()
    first = publish(call, {"text": "once", "_idempotency_key": "k-1"}, meta=TOKEN_META)["result"]
    time.sleep(0.01)
    again = publish(call, {"text": "once", "_idempotency_key": "k-1"}, meta=TOKEN_META)["result"]
    assert again["data"] == first["data"]
    assert redis_client.xlen(first["tags"]["stream"]) == 1


def test_issue12_item6_binary_publications_are_refused_on_enrich_channels(
    call: Call, redis_client: redis.Redis
) -> None:
    enrich(allow_binary=True)
    status, answer = call(
        "publish", {"user": "42", "channel": "chat:bin", "b64data": base64.b64encode(b"\x00\xff").decode()}
    )
    assert (status, answer) == (
        200,
        {
            "error": {
                "code": 107,
                "message": "this channel wraps publications in a JSON envelope (enrich): publish JSON, not binary data",
            }
        },
    )
    assert redis_client.keys("rtgw:stream:*") == []


def test_issue12_item6_the_name_comes_from_the_token_info_or_the_django_user(client: Client, call: Call) -> None:
    token = connection_token_issue(user="42", ttl=60, info={"name": "Ann"}, meta={"roles": ["editor"]})
    meta = call("connect", {"data": {"token": token}})[1]["result"]["meta"]
    assert {k: meta[k] for k in ("roles", "auth", "name")} == {"roles": ["editor"], "auth": "token", "name": "Ann"}
    enrich()
    assert publish(call, {"n": 1}, meta=meta)["result"]["data"]["sender"]["name"] == "Ann"

    user = User.objects.create_user("bea", password="pw-for-tests-only", first_name="Bea", last_name="Kim")
    client.force_login(user)
    session_meta = call("connect", {})[1]["result"]["meta"]
    assert session_meta["name"] == "Bea Kim"
    sender = publish(call, {"n": 2}, user=str(user.pk), meta=session_meta)["result"]["data"]["sender"]
    assert sender == {"user": str(user.pk), "client": CLIENT_ID, "name": "Bea Kim"}


def test_issue12_item6_issued_tokens_carry_the_info_name_in_meta_for_centrifugo_verified_connections() -> None:
    import jwt

    claims = jwt.decode(
        connection_token_issue(user="42", ttl=60, info={"name": "Ann"}), options={"verify_signature": False}
    )
    assert claims["meta"] == {"name": "Ann", "jti": claims["jti"], "iat": claims["iat"], "exp": claims["exp"]}
    own = connection_token_issue(user="42", ttl=60, info={"name": "Ann"}, meta={"name": "A."})
    assert jwt.decode(own, options={"verify_signature": False})["meta"]["name"] == "A."


def test_issue12_item6_server_api_publications_are_enriched_too(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    centrifugo = FakeCentrifugo()
    centrifugo.answers["publish"] = {"result": {"offset": 1, "epoch": "e"}}
    settings.GATEWAY_API_KEY = "k"
    settings.CENTRIFUGO_API_URL = centrifugo.url
    monkeypatch.setattr(server_api._connections, "held", None, raising=False)
    enrich()
    try:
        response = client.post(
            "/api/publish",
            data=json.dumps({"channel": "chat:room1", "data": {"sender": "forged"}}),
            content_type="application/json",
            headers={"Authorization": "Api-Key k"},
        )
    finally:
        centrifugo.stop()
    assert response.status_code == 200
    [(path, _, sent)] = centrifugo.calls
    tags = sent["tags"]
    assert (path, sent["data"]) == (
        "/api/publish",
        {
            "data": {"sender": "forged"},
            "sender": {"user": "server", "client": "server-api", "name": None},
            "time": int(tags["stream_id"].split("-")[0]),
            "id": tags["stream_id"],
        },
    )
    [(_, fields)] = redis_client.xrange(tags["stream"])
    assert json.loads(fields["data"]) == {"sender": "forged"}


def test_issue12_item6_a_worker_publication_is_enriched_with_its_client_name(
    settings: Any, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    """server_publish, what the worker SDK's Worker.publish calls: the sender is SERVER_API_USER and
    the worker's client name, never the payload."""
    from callbacks.server_api import Published, server_publish

    sent: list[dict[str, Any]] = []

    def record(*, channel: str, data: bytes, tags: dict[str, str], idempotency_key: str) -> dict[str, Any]:
        sent.append(json.loads(data))
        return {}

    monkeypatch.setattr("callbacks.server_api.centrifugo_publish", record)
    enrich()
    outcome = server_publish(channel="chat:room1", data=b'{"user":"alice"}', idempotency="", client="worker:echo")
    assert isinstance(outcome, Published)
    assert sent == [
        {
            "data": {"user": "alice"},
            "sender": {"user": "server", "client": "worker:echo", "name": None},
            "time": int(outcome.tags["stream_id"].split("-")[0]),
            "id": outcome.tags["stream_id"],
        }
    ]
