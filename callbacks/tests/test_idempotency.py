"""Idempotency keys are one publisher's retry of one publication (hardening issue item 1): through
the publish proxy (both transports, see conftest) and POST /api/publish."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from django.test import Client

from callbacks.tests.conftest import Call
from callbacks.tests.test_publication_checks import chat_rule
from callbacks.tests.test_server_api import KEY, _Centrifugo, post
from partitions.store import rules_store

pytestmark = pytest.mark.django_db


def publish(call: Call, user: str, channel: str, data: dict[str, Any]) -> dict[str, Any]:
    return call("publish", {"user": user, "channel": channel, "data": data})[1]


def entries(redis_client: redis.Redis, stream: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(f["user"], f["channel"], json.loads(f["data"])) for _, f in redis_client.xrange(stream)]


def test_issue9_item1_same_key_from_another_user_is_stored(call: Call, redis_client: redis.Redis) -> None:
    alice = publish(call, "alice", "chat:a", {"_idempotency_key": "K", "text": "from alice"})["result"]
    bob = publish(call, "bob", "chat:a", {"_idempotency_key": "K", "text": "from bob"})["result"]
    assert bob["tags"]["stream_id"] != alice["tags"]["stream_id"]
    assert entries(redis_client, alice["tags"]["stream"]) == [
        ("alice", "chat:a", {"_idempotency_key": "K", "text": "from alice"}),
        ("bob", "chat:a", {"_idempotency_key": "K", "text": "from bob"}),
    ]
    # Centrifugo de-duplicates per channel by this key: it must not be the shared raw "K".
    assert "K" not in (alice["idempotency_key"], bob["idempotency_key"])
    assert alice["idempotency_key"] != bob["idempotency_key"]


def test_issue9_item1_same_key_on_another_channel_of_the_partition_is_stored(
    call: Call, redis_client: redis.Redis
) -> None:
    ruleset = rules_store.current()
    partition = ruleset.target(channel="chat:a", user="alice")
    other = next(
        f"chat:b{n}" for n in range(1000) if ruleset.target(channel=f"chat:b{n}", user="bob") == partition
    )  # a different channel that the default chat rule (8 partitions by channel) puts in the same partition
    alice = publish(call, "alice", "chat:a", {"_idempotency_key": "K", "text": "a"})["result"]
    bob = publish(call, "bob", other, {"_idempotency_key": "K", "text": "b"})["result"]
    mine = publish(call, "alice", other, {"_idempotency_key": "K", "text": "c"})["result"]
    assert alice["tags"]["stream"] == bob["tags"]["stream"] == mine["tags"]["stream"]
    assert len({alice["tags"]["stream_id"], bob["tags"]["stream_id"], mine["tags"]["stream_id"]}) == 3
    assert [(u, c) for u, c, _ in entries(redis_client, alice["tags"]["stream"])] == [
        ("alice", "chat:a"), ("bob", other), ("alice", other),
    ]  # fmt: skip


def test_a_true_retry_is_a_duplicate_with_the_same_answer(call: Call, redis_client: redis.Redis) -> None:
    data = {"_idempotency_key": "K", "text": "hi"}
    first = publish(call, "alice", "chat:a", data)["result"]
    again = publish(call, "alice", "chat:a", data)["result"]
    assert again == first
    assert redis_client.xlen(first["tags"]["stream"]) == 1


def test_issue9_item1_a_key_reused_with_different_data_is_refused_with_1409(
    call: Call, redis_client: redis.Redis
) -> None:
    first = publish(call, "alice", "chat:a", {"_idempotency_key": "K", "text": "hi"})["result"]
    reused = publish(call, "alice", "chat:a", {"_idempotency_key": "K", "text": "something else"})
    assert reused == {"error": {"code": 1409, "message": "idempotency key already used for a different publication"}}
    assert entries(redis_client, first["tags"]["stream"]) == [
        ("alice", "chat:a", {"_idempotency_key": "K", "text": "hi"})
    ]


def test_issue9_item1_anonymous_publishers_keys_are_scoped_to_their_connection(
    call: Call, redis_client: redis.Redis
) -> None:
    chat_rule(publish_access="anyone")
    data = {"_idempotency_key": "K", "text": "hi"}
    one = call("publish", {"user": "", "client": "client-1", "channel": "chat:a", "data": data})[1]["result"]
    retry = call("publish", {"user": "", "client": "client-1", "channel": "chat:a", "data": data})[1]["result"]
    other = call("publish", {"user": "", "client": "client-2", "channel": "chat:a", "data": data})[1]["result"]
    assert retry == one
    assert other["tags"]["stream_id"] != one["tags"]["stream_id"]
    assert other["idempotency_key"] != one["idempotency_key"]
    assert redis_client.xlen(one["tags"]["stream"]) == 2


def test_issue9_item1_api_publish_key_reused_with_other_data_is_422(
    client: Client, redis_client: redis.Redis, settings: Any
) -> None:
    settings.GATEWAY_API_KEY = KEY
    centrifugo = _Centrifugo()
    settings.CENTRIFUGO_API_URL = centrifugo.url
    try:
        first = post(client, {"channel": "chat:x", "data": {"n": 1}}, **{"Idempotency-Key": "k-1"})
        reused = post(client, {"channel": "chat:x", "data": {"n": 2}}, **{"Idempotency-Key": "k-1"})
        retry = post(client, {"channel": "chat:x", "data": {"n": 1}}, **{"Idempotency-Key": "k-1"})
        elsewhere = post(client, {"channel": "chat:y", "data": {"n": 2}}, **{"Idempotency-Key": "k-1"})
    finally:
        centrifugo.stop()
    assert reused == (422, {"error": {"code": 1409, "temporary": False,
                                      "message": "idempotency key already used for a different publication"}})  # fmt: skip
    assert (first[0], retry[0], elsewhere[0]) == (200, 200, 200)
    assert retry[1]["result"]["duplicate"] is True  # type: ignore[index]
    assert elsewhere[1]["result"]["duplicate"] is False  # type: ignore[index]
    # Centrifugo got a key scoped to the publisher, the same for the retry, never the raw "k-1".
    sent = [body.get("idempotency_key") for body in centrifugo.bodies]
    assert len(sent) == 3
    assert sent[0] == sent[1] != "k-1"
    assert sent[2] not in (sent[0], "k-1")
