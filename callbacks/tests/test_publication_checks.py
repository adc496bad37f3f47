"""Per-rule checks on publications: JSON Schema, rate limit, idempotency, subscription options."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from callbacks.tests.conftest import NOW, Call
from partitions import models, services

pytestmark = pytest.mark.django_db


def chat_rule(**fields: Any) -> None:
    rule = models.ChannelRule.objects.get(pattern="chat:*")
    for name, value in fields.items():
        setattr(rule, name, value)
    services.rule_save(rule=rule, actor="test")


SCHEMA = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string", "maxLength": 5}}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"txt": "hi"}, "data does not match the channel's schema at $: 'text' is a required property"),
        ({"text": 5}, "data does not match the channel's schema at $.text: 5 is not of type 'string'"),
        ({"text": "too long"}, "data does not match the channel's schema at $.text: 'too long' is too long"),
    ],
)
def test_data_that_breaks_the_schema_is_refused_with_where_and_why(
    call: Call, redis_client: redis.Redis, data: object, message: str
) -> None:
    chat_rule(publish_schema=SCHEMA)
    assert call("publish", {"user": "42", "channel": "chat:x", "data": data}) == (
        200,
        {"error": {"code": 107, "message": message}},
    )
    assert redis_client.keys("rtgw:stream:*") == []


def test_data_that_fits_the_schema_is_stored(call: Call, redis_url: str) -> None:
    chat_rule(publish_schema=SCHEMA)
    assert "result" in call("publish", {"user": "42", "channel": "chat:x", "data": {"text": "hey"}})[1]


def test_binary_data_cannot_pass_a_schema(call: Call, redis_url: str) -> None:
    chat_rule(publish_schema=SCHEMA)
    _status, body = call("publish", {"user": "42", "channel": "chat:x", "b64data": "AP8="})
    assert body == {"error": {"code": 107, "message": "this channel accepts JSON publications only"}}


def test_the_rate_limit_counts_per_user_and_is_temporary(call: Call, redis_client: redis.Redis) -> None:
    chat_rule(publish_rate_limit=3, publish_rate_window=60)
    answers = [call("publish", {"user": "42", "channel": "chat:x", "data": i})[1] for i in range(5)]
    assert ["result" in a for a in answers] == [True, True, True, False, False]
    assert answers[3] == {"error": {"code": 111, "message": "rate limit: 3 publications per 60 s", "temporary": True}}
    assert "result" in call("publish", {"user": "43", "channel": "chat:x", "data": 1})[1]  # another user is not limited
    assert sum(redis_client.xlen(k) for k in redis_client.keys("rtgw:stream:*")) == 4


def test_a_retried_publish_with_the_same_idempotency_key_is_stored_once(call: Call, redis_client: redis.Redis) -> None:
    body = {"user": "42", "channel": "chat:x", "data": {"_idempotency_key": "order-17", "text": "hi"}}
    first = call("publish", body)[1]["result"]
    again = call("publish", body)[1]["result"]
    assert first["tags"] == again["tags"]
    assert first["idempotency_key"] == again["idempotency_key"]  # scoped to the publisher: see test_idempotency
    assert redis_client.xlen(first["tags"]["stream"]) == 1
    other = call("publish", {**body, "data": {"_idempotency_key": "order-18"}})[1]["result"]
    assert other["tags"]["stream_id"] != first["tags"]["stream_id"]


def test_an_overlong_idempotency_key_is_refused(call: Call, redis_url: str) -> None:
    _status, body = call("publish", {"user": "42", "channel": "chat:x", "data": {"_idempotency_key": "k" * 200}})
    assert body == {"error": {"code": 107, "message": "_idempotency_key is longer than 128 characters"}}


def test_subscription_options_reach_centrifugo_as_overrides(call: Call) -> None:
    chat_rule(presence=False, join_leave=True, force_recovery=True)
    assert call("subscribe", {"user": "42", "channel": "chat:x"}) == (
        200,
        {
            "result": {
                "override": {
                    "presence": {"value": False},
                    "join_leave": {"value": True},
                    "force_recovery": {"value": True},
                },
                "expire_at": NOW + 2,
            }
        },
    )


def test_max_age_trims_old_entries_on_write(call: Call, redis_client: redis.Redis) -> None:
    services.rule_save(
        actor="test", rule=models.PartitionRule(pattern="logs:*", stream="logs", partitions=1, max_age_seconds=60)
    )
    services.rule_save(actor="test", rule=models.ChannelRule(pattern="logs:*", publish_access="authenticated"))
    key = "rtgw:stream:{logs:0}"
    for i in range(200):  # old entries, well past the age, in more than one macro node
        redis_client.xadd(key, {"old": i}, id=f"{1000 + i}-0")
    call("publish", {"user": "42", "channel": "logs:a", "data": 1})
    assert redis_client.xlen(key) < 201
