from __future__ import annotations

import logging

import pytest

from callbacks.tests.conftest import Call

pytestmark = pytest.mark.django_db

ALLOW = (200, {"result": {}})
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


def test_sub_refresh_keeps_an_allowed_subscription_and_expires_a_revoked_one(call: Call) -> None:
    assert call("sub_refresh", {"user": "42", "channel": "chat:room1"}) == (200, {"result": {}})
    assert call("sub_refresh", {"user": "", "channel": "chat:room1"}) == (200, {"result": {"expired": True}})


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
