"""Issue 13, item 1: every callback refuses a connection whose token an operator revoked or whose
user is banned, with the disconnect reply (exact Centrifugo v6.9.1 request bodies)."""

from __future__ import annotations

import datetime
import time
from typing import Any

import jwt
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from callbacks.tests.conftest import NOW, Call
from callbacks.tokens import connection_token_issue
from control import models
from partitions.store import rules_store

pytestmark = pytest.mark.django_db

REVOKED = {"disconnect": {"code": 4504, "reason": "token revoked"}}
BANNED = {"disconnect": {"code": 4505, "reason": "banned: spam"}}


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _revoke(jti: str) -> None:
    now = timezone.now()
    models.IssuedToken.objects.create(
        jti=jti, kind="connection", user="42", issued_at=now, expires_at=now + datetime.timedelta(hours=1),
        ttl=3600, issued_by="test", revoked_at=now, revoked_by="test",
    )  # fmt: skip
    rules_store.invalidate()  # what ruleset_bump's on_commit does


def _ban(user: str) -> None:
    models.Ban.objects.create(user=user, reason="spam", actor="test")
    rules_store.invalidate()


def _token_meta(token: str) -> dict[str, Any]:
    """The connection meta Centrifugo keeps for a token it verified itself: the `meta` claim."""
    meta: dict[str, Any] = _claims(token)["meta"]
    return meta


def test_issue13_item1_connect_refuses_a_revoked_token_in_connect_data(call: Call) -> None:
    token = connection_token_issue(user="42", ttl=600)
    other = connection_token_issue(user="42", ttl=600)
    _revoke(_claims(token)["jti"])
    body = {"data": {"token": token}, "name": "python", "version": "0.7.0"}
    assert call("connect", body) == (200, REVOKED)
    assert call("connect", {**body, "data": {"token": other}})[1]["result"]["user"] == "42"


def test_issue13_item1_connect_refuses_a_banned_user_by_token_and_by_session(call: Call, client: Client) -> None:
    user = User.objects.create_user("eve", password="pw-for-tests-only")
    _ban(str(user.pk))
    token = connection_token_issue(user=str(user.pk), ttl=600)
    assert call("connect", {"data": {"token": token}}) == (200, BANNED)
    client.force_login(user)
    assert call("connect", {}) == (200, BANNED)


def test_issue13_item1_connect_answer_is_rechecked_within_token_recheck_interval(call: Call, settings: Any) -> None:
    settings.TOKEN_RECHECK_INTERVAL = 30
    token = connection_token_issue(user="42", ttl=3600)
    result = call("connect", {"data": {"token": token}})[1]["result"]
    assert abs(result["expire_at"] - (time.time() + 30)) < 5  # not the token's exp, an hour away
    claims = _claims(token)
    assert (result["meta"]["jti"], result["meta"]["iat"], result["meta"]["exp"]) == (
        claims["jti"],
        claims["iat"],
        claims["exp"],
    )
    settings.TOKEN_RECHECK_INTERVAL = 7200
    assert call("connect", {"data": {"token": token}})[1]["result"]["expire_at"] == claims["exp"]


def test_issue13_item1_refresh_extends_a_token_connection_and_disconnects_a_revoked_one(
    call: Call, settings: Any
) -> None:
    settings.TOKEN_RECHECK_INTERVAL = 30
    token = connection_token_issue(user="42", ttl=3600)
    meta = call("connect", {"data": {"token": token}})[1]["result"]["meta"]
    # The exact body Centrifugo sends to the refresh proxy (include_connection_meta on).
    body = {"user": "42", "meta": meta}
    assert abs(call("refresh", body)[1]["result"]["expire_at"] - (time.time() + 30)) < 5
    _revoke(meta["jti"])
    assert call("refresh", body) == (200, REVOKED)


def test_issue13_item1_refresh_expires_a_token_connection_at_its_tokens_expiry(call: Call) -> None:
    meta = {"auth": "token", "jti": "a" * 32, "iat": int(time.time()) - 100, "exp": int(time.time()) - 1}
    assert call("refresh", {"user": "42", "meta": meta}) == (200, {"result": {"expired": True}})


def test_issue13_item1_refresh_rechecks_a_centrifugo_verified_token_by_its_meta_claim(call: Call) -> None:
    token = connection_token_issue(user="42", ttl=3600, meta={"roles": ["editor"]})
    body = {"user": "42", "meta": _token_meta(token)}
    assert call("refresh", body)[1]["result"]["expire_at"] > time.time()
    _revoke(_claims(token)["jti"])
    assert call("refresh", body) == (200, REVOKED)


@pytest.mark.parametrize(
    ("kind", "body", "allowed"),
    [
        ("subscribe", {"channel": "chat:room1"}, {"result": {"expire_at": NOW + 2}}),
        ("sub_refresh", {"channel": "chat:room1"}, {"result": {"expire_at": NOW + 1}}),
        ("rpc", {"method": "history", "data": {"channel": "chat:nothing-here"}}, None),
        ("publish", {"channel": "chat:room1", "data": {"text": "hi"}}, None),
    ],
)
def test_issue13_item1_every_call_of_a_revoked_tokens_connection_is_a_disconnect(
    call: Call, redis_url: str, kind: str, body: dict[str, Any], allowed: dict[str, Any] | None
) -> None:
    # A token Centrifugo verified itself: no connect proxy call; its meta claim is the meta.
    token = connection_token_issue(user="42", ttl=3600, meta={"roles": ["editor"]})
    request = {"user": "42", "meta": _token_meta(token), **body}
    before = call(kind, request)
    assert "result" in before[1], before
    if allowed is not None:
        assert before == (200, allowed)
    _revoke(_claims(token)["jti"])
    assert call(kind, request) == (200, REVOKED)
    # Another connection of the same user, with another token, is untouched.
    fresh = connection_token_issue(user="42", ttl=3600, meta={"roles": ["editor"]})
    assert "result" in call(kind, {**request, "meta": _token_meta(fresh)})[1]


def test_issue13_item1_a_user_cutoff_revokes_tokens_issued_before_it_only(call: Call) -> None:
    old = {"auth": "jwt", "jti": "b" * 32, "iat": int(time.time()) - 600, "exp": int(time.time()) + 600}
    new = {**old, "jti": "c" * 32, "iat": int(time.time()) + 1}
    session = {"auth": "session", "sid": "x"}  # a cutoff is about tokens: a session stays
    models.UserTokenCutoff.objects.create(user="42", before=timezone.now(), actor="test")
    rules_store.invalidate()
    request = {"user": "42", "channel": "chat:room1"}
    assert call("subscribe", {**request, "meta": old}) == (200, REVOKED)
    assert call("subscribe", {**request, "meta": new})[1] == {"result": {"expire_at": NOW + 2}}
    assert call("subscribe", {**request, "meta": session})[1] == {"result": {"expire_at": NOW + 2}}
    assert call("subscribe", {**request, "user": "43", "meta": old})[1] == {"result": {"expire_at": NOW + 2}}


def test_issue13_item1_a_banned_users_session_connection_is_disconnected_at_its_next_call(call: Call) -> None:
    _ban("42")
    request = {"user": "42", "channel": "chat:room1", "meta": {"auth": "session", "sid": "x"}}
    assert call("sub_refresh", request) == (200, BANNED)
    assert call("subscribe", {**request, "user": "43"})[1] == {"result": {"expire_at": NOW + 2}}
