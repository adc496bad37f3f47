from __future__ import annotations

import logging
from typing import Any

import pytest

from callbacks.tests.conftest import NOW, Call
from partitions.store import rules_store

pytestmark = pytest.mark.django_db

# An allowed subscription is re-checked by sub_refresh once this is past (item 6 of the issue).
ALLOW = (200, {"result": {"expire_at": NOW + 2}})
DENY = (200, {"error": {"code": 103, "message": "permission denied"}})


@pytest.mark.parametrize(
    ("user", "channel", "expected"),
    [
        ("", "public:news", ALLOW),
        ("42", "public:news", ALLOW),
        ("", "chat:room1", DENY),
        ("42", "chat:room1", ALLOW),
        ("42", "secret:x", DENY),
        ("", "secret:x", DENY),
        ("42", "chatroom", DENY),
    ],
)
def test_default_rules(call: Call, user: str, channel: str, expected: tuple[int, dict[str, object]]) -> None:
    assert call("subscribe", {"user": user, "channel": channel}) == expected


def test_a_denial_is_logged_with_its_reason(call: Call, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="callbacks"):
        call("subscribe", {"user": "", "channel": "chat:room1"})
    assert "subscribe denied: user='' channel='chat:room1': rule #" in caplog.text
    assert "'chat:*' denies subscribe: requires an authenticated user" in caplog.text


def test_issue9_item6_subscribe_answer_carries_a_near_expire_at(call: Call, settings: Any) -> None:
    # Without an expire_at Centrifugo never calls sub_refresh: a revoked subscriber would stay.
    assert call("subscribe", {"user": "42", "channel": "chat:room1"}) == (200, {"result": {"expire_at": NOW + 2}})
    settings.SUBSCRIPTION_RECHECK_INTERVAL = 0  # off: the answer of before, no re-checks
    assert call("subscribe", {"user": "42", "channel": "chat:room1"}) == (200, {"result": {}})


def test_issue9_item6_sub_refresh_extends_an_allowed_subscription(call: Call) -> None:
    # A result without expire_at would set it to 0 in Centrifugo: never re-checked again.
    body = {"user": "42", "channel": "chat:room1", "meta": {"roles": [], "auth": "jwt"}}
    assert call("sub_refresh", {**body}) == (200, {"result": {"expire_at": NOW + 1}})


def test_issue9_item6_sub_refresh_expires_a_revoked_subscription_and_logs_no_payload(
    call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    from partitions import models, services

    # The exact body Centrifugo v6.9.1 sends to the sub_refresh proxy (include_connection_meta on).
    body = {"user": "42", "channel": "chat:room1", "meta": {"roles": ["secret-role"], "auth": "token"}}
    assert call("sub_refresh", body) == (200, {"result": {"expire_at": NOW + 1}})
    rule = models.ChannelRule.objects.get(pattern="chat:*")
    rule.subscribe_access = "nobody"
    services.rule_save(rule=rule, actor="operator")  # what the admin does
    rules_store.invalidate()  # what each process's watcher does on its next poll
    with caplog.at_level(logging.INFO, logger="callbacks"):
        assert call("sub_refresh", body) == (200, {"result": {"expired": True}})
    assert "sub_refresh expired: user='42' channel='chat:room1': rule #" in caplog.text
    assert "secret-role" not in caplog.text
    assert call("sub_refresh", {"user": "", "channel": "public:news"}) == (200, {"result": {"expire_at": NOW + 1}})


def test_roles_come_from_the_connection_meta(call: Call) -> None:
    from partitions import models, services

    services.rule_save(
        actor="test",
        rule=models.ChannelRule(
            pattern="ops:*", subscribe_access="roles", subscribe_roles="admin, oncall", publish_access="nobody"
        ),
    )
    assert call("subscribe", {"user": "7", "channel": "ops:alerts", "meta": {"roles": ["oncall"]}}) == ALLOW
    assert call("subscribe", {"user": "7", "channel": "ops:alerts", "meta": {"roles": ["viewer"]}}) == DENY
    assert call("subscribe", {"user": "7", "channel": "ops:alerts"}) == DENY
    # meta an operator's token got wrong counts as no roles, not as an error
    assert call("subscribe", {"user": "7", "channel": "ops:alerts", "meta": {"roles": "oncall"}}) == DENY


def test_rpc_answers_method_not_found(call: Call) -> None:
    assert call("rpc", {"user": "42", "method": "nope", "data": {}}) == (
        200,
        {"error": {"code": 104, "message": "unknown method 'nope'"}},
    )
