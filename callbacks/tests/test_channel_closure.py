"""The channel kill switch (issue 13, item 3) on every publish path and on subscribe: a closed
channel is refused with error 1423 naming the operator's reason (permanent, not 103 and not the
temporary 1503), at once in the process that closed it; channels it does not match are untouched."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.test import Client

from callbacks.tests.conftest import NOW, Call
from control import services
from partitions.store import rules_store
from workers.sdk import PublishError, Worker

pytestmark = pytest.mark.django_db

REASON = "incident 42: spam wave"
CLOSED = {"error": {"code": 1423, "message": f"channel closed: {REASON}"}}
KEY = "server-api-key-for-tests"


@pytest.fixture(autouse=True)
def _commits(django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The closing process applies a closure as its transaction commits (ruleset_bump's on_commit);
    # the test's transaction never commits, so each service call runs its on_commit hooks itself.
    for name in ("channel_close", "channel_reopen"):
        original = getattr(services, name)

        def committed(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with django_capture_on_commit_callbacks(execute=True):
                return _original(*args, **kwargs)

        monkeypatch.setattr(services, name, committed)


@pytest.fixture(autouse=True)
def _no_closure_left() -> Iterator[None]:
    yield
    rules_store.invalidate()  # the closures were rolled back with the test's database


def close(*, subscribe: bool = False) -> None:
    services.channel_close(pattern="chat:*", actor="ops", reason=REASON, subscribe=subscribe)


def test_issue13_item3_a_client_publish_to_a_closed_channel_gets_1423_with_the_reason(
    call: Call, redis_client: redis.Redis
) -> None:
    assert call("publish", {"user": "42", "channel": "chat:room1", "data": {"n": 1}})[0] == 200
    close()
    assert call("publish", {"user": "42", "channel": "chat:room1", "data": {"n": 2}}) == (200, CLOSED)
    # Not stored: only the publication of before the closure is in the log.
    assert sum(redis_client.xlen(k) for k in redis_client.scan_iter("rtgw:stream:*")) == 1
    # Another channel is untouched; a plain denial is still 103.
    assert call("publish", {"user": "42", "channel": "public:news", "data": 1})[0] == 200
    assert call("publish", {"user": "", "channel": "public:news", "data": 1})[1]["error"]["code"] == 103


def test_issue13_item3_a_closure_for_publish_only_leaves_subscribe_open(call: Call) -> None:
    close()
    assert call("subscribe", {"user": "42", "channel": "chat:room1"}) == (200, {"result": {"expire_at": NOW + 2}})
    body = {"user": "42", "channel": "chat:room1", "meta": {"roles": [], "auth": "jwt"}}
    assert call("sub_refresh", body) == (200, {"result": {"expire_at": NOW + 1}})


def test_issue13_item3_subscribe_closed_refuses_new_subscribes_and_expires_live_ones(
    call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    close(subscribe=True)
    assert call("subscribe", {"user": "42", "channel": "chat:room1"}) == (200, CLOSED)
    body = {"user": "42", "channel": "chat:room1", "meta": {"roles": [], "auth": "jwt"}}
    with caplog.at_level(logging.INFO, logger="callbacks"):
        assert call("sub_refresh", body) == (200, {"result": {"expired": True}})
    assert f"sub_refresh expired: user='42' channel='chat:room1': channel closed by an operator (chat:*): {REASON}" in (
        caplog.text
    )
    assert call("subscribe", {"user": "42", "channel": "public:news"}) == (200, {"result": {"expire_at": NOW + 2}})


def test_issue13_item3_history_of_a_channel_closed_for_subscribe_is_1423(call: Call, redis_url: str) -> None:
    history = {"user": "42", "method": "history", "data": {"channel": "chat:room1"}}
    close()  # publish only: its history stays readable
    assert call("rpc", history)[1] == {"result": {"data": {"messages": [], "next_cursor": None}}}
    close(subscribe=True)
    assert call("rpc", history) == (200, CLOSED)


def test_issue13_item3_reopening_restores_the_rules_decision(call: Call) -> None:
    close(subscribe=True)
    closure = services.channel_close(pattern="chat:*", actor="ops", reason=REASON, subscribe=True)
    services.channel_reopen(closure=closure, actor="ops")
    assert call("publish", {"user": "42", "channel": "chat:room1", "data": 1})[0] == 200
    assert call("subscribe", {"user": "42", "channel": "chat:room1"}) == (200, {"result": {"expire_at": NOW + 2}})


def test_issue13_item3_the_server_api_publish_to_a_closed_channel_is_403_1423(
    client: Client, settings: Any, redis_client: redis.Redis
) -> None:
    settings.GATEWAY_API_KEY = KEY
    close()
    response = client.post(
        "/api/publish",
        data=json.dumps({"channel": "chat:room1", "data": {"n": 1}}),
        content_type="application/json",
        headers={"Authorization": f"Api-Key {KEY}"},
    )
    assert (response.status_code, json.loads(response.content)) == (
        403,
        {"error": {"code": 1423, "message": f"channel closed: {REASON}", "temporary": False}},
    )
    assert list(redis_client.scan_iter("rtgw:stream:*")) == []


class Bot(Worker):
    group = "g"


def test_issue13_item3_a_workers_publish_to_a_closed_channel_raises_1423(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr("callbacks.server_api.centrifugo_publish", lambda **call: sent.append(call) or {})
    close()
    with pytest.raises(PublishError) as refused:
        Bot(name="w1").publish("chat:room1", {"x": 1})
    assert (refused.value.code, str(refused.value), refused.value.temporary) == (
        1423,
        f"channel closed: {REASON}",
        False,
    )
    assert sent == []
