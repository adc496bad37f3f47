from __future__ import annotations

import pytest
import redis

from callbacks.tests.conftest import Call

pytestmark = pytest.mark.django_db


def publish(call: Call, channel: str, data: object, user: str = "42") -> str:
    return call("publish", {"user": user, "channel": channel, "data": data})[1]["result"]["tags"]["stream_id"]


def history(call: Call, user: str, **params: object) -> dict[str, object]:
    return call("rpc", {"user": user, "method": "history", "data": params})[1]


def test_history_returns_exactly_the_messages_after_an_id(call: Call, redis_url: str) -> None:
    ids = [publish(call, "chat:h1", {"n": i}) for i in range(5)]
    publish(call, "chat:other", {"n": 99})
    body = history(call, "42", channel="chat:h1", since=ids[1])
    messages = body["result"]["data"]["messages"]  # type: ignore[index]
    assert [m["id"] for m in messages] == ids[2:]
    assert [m["data"] for m in messages] == [{"n": 2}, {"n": 3}, {"n": 4}]
    assert {m["channel"] for m in messages} == {"chat:h1"}
    assert body["result"]["data"]["next_cursor"] is None  # type: ignore[index]


def test_history_pages_with_a_cursor(call: Call, redis_url: str) -> None:
    ids = [publish(call, "chat:h2", i) for i in range(7)]
    first = history(call, "42", channel="chat:h2", limit=3)["result"]["data"]  # type: ignore[index]
    assert [m["id"] for m in first["messages"]] == ids[:3]
    second = history(call, "42", channel="chat:h2", limit=3, cursor=first["next_cursor"])["result"]["data"]  # type: ignore[index]
    third = history(call, "42", channel="chat:h2", limit=3, cursor=second["next_cursor"])["result"]["data"]  # type: ignore[index]
    assert [m["id"] for m in second["messages"] + third["messages"]] == ids[3:]


def test_history_since_a_time(call: Call, redis_client: redis.Redis) -> None:
    ids = [publish(call, "chat:h3", i) for i in range(3)]
    since_ms = int(ids[1].split("-")[0])
    messages = history(call, "42", channel="chat:h3", since_ms=since_ms)["result"]["data"]["messages"]  # type: ignore[index]
    assert [m["id"] for m in messages][-2:] == ids[1:]


def test_history_is_denied_to_a_user_the_subscribe_rule_denies(call: Call, redis_url: str) -> None:
    publish(call, "chat:h4", 1)
    assert history(call, "", channel="chat:h4") == {"error": {"code": 103, "message": "permission denied"}}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "bad history request: Object missing required field `channel`"),
        ({"channel": "chat:x", "since": "nope"}, "bad history request: Expected `str` matching regex"),
        ({"channel": "chat:x", "limit": 5000}, "bad history request: Expected `int` <= 1000 - at `$.limit`"),
        ({"channel": "chat:x", "colour": 1}, "bad history request: Object contains unknown field `colour`"),
    ],
)
def test_bad_history_requests_are_explained(call: Call, params: dict[str, object], message: str) -> None:
    body = history(call, "42", **params)
    assert body["error"]["code"] == 107  # type: ignore[index]
    assert body["error"]["message"].startswith(message)  # type: ignore[index]
