from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from callbacks.tests.conftest import Call
from callbacks.tokens import connection_token_issue

pytestmark = pytest.mark.django_db


def test_a_valid_token_in_connect_data_authenticates_the_user(call: Call) -> None:
    token = connection_token_issue(user="42", ttl=60, info={"name": "Ann"}, meta={"roles": ["editor"]})
    status, body = call("connect", {"data": {"token": token}, "name": "python", "version": "0.7.0"})
    assert status == 200
    result = body["result"]
    assert result["user"] == "42"
    assert result["info"] == {"name": "Ann"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert result["meta"] == {
        "roles": ["editor"],
        "auth": "token",
        "name": "Ann",
        "jti": claims["jti"],
        "iat": claims["iat"],
        "exp": claims["exp"],
    }
    assert abs(result["expire_at"] - (time.time() + 60)) < 5


def test_an_expired_token_is_disconnected(call: Call) -> None:
    token = jwt.encode(
        {"sub": "42", "exp": int(time.time()) - 10},
        "test-hmac-secret-key-0123456789abcdef-0123456789abcdef-0123456789",
        algorithm="HS256",
    )
    assert call("connect", {"data": {"token": token}}) == (
        200,
        {"disconnect": {"code": 4502, "reason": "token expired"}},
    )


@pytest.mark.parametrize(
    ("claims", "key", "algorithm", "reason"),
    [
        (
            {"sub": "42", "exp": 4102444800},
            "another-key-entirely-0123456789abcdef-0123456789abcdef-0123456789",
            "HS256",
            "invalid token: Signature verification failed",
        ),
        (
            {"sub": "", "exp": 4102444800},
            "test-hmac-secret-key-0123456789abcdef-0123456789abcdef-0123456789",
            "HS256",
            "invalid token: 'sub' must be a non-empty string",
        ),
        (
            {"exp": 4102444800},
            "test-hmac-secret-key-0123456789abcdef-0123456789abcdef-0123456789",
            "HS256",
            'invalid token: Token is missing the "sub" claim',
        ),
        (
            {"sub": "42", "exp": 4102444800, "channel": "chat:room1"},
            "test-hmac-secret-key-0123456789abcdef-0123456789abcdef-0123456789",
            "HS256",
            "invalid token: a connection token cannot carry a 'channel' claim",
        ),
    ],
)
def test_a_bad_token_is_disconnected_with_the_reason(
    call: Call, claims: dict[str, object], key: str, algorithm: str, reason: str
) -> None:
    token = jwt.encode(claims, key, algorithm=algorithm)
    assert call("connect", {"data": {"token": token}}) == (200, {"disconnect": {"code": 4501, "reason": reason}})


KEY = "test-hmac-secret-key-0123456789abcdef-0123456789abcdef-0123456789"


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_issue9_item7_every_hmac_algorithm_centrifugo_accepts_is_accepted(call: Call, algorithm: str) -> None:
    token = jwt.encode({"sub": "42", "exp": 4102444800}, KEY, algorithm=algorithm)
    _status, body = call("connect", {"data": {"token": token}})
    assert body["result"]["user"] == "42"
    assert body["result"]["meta"]["exp"] == 4102444800  # re-checked before (issue 13), expired then


def test_issue9_item7_a_token_without_exp_connects_for_good_like_in_centrifugo(call: Call, settings: Any) -> None:
    token = jwt.encode({"sub": "42"}, KEY, algorithm="HS256")
    _status, body = call("connect", {"data": {"token": token}})
    assert body["result"]["user"] == "42"
    # Never expired (meta exp 0), but re-checked for revocation every TOKEN_RECHECK_INTERVAL (issue 13).
    assert body["result"]["meta"]["exp"] == 0
    assert abs(body["result"]["expire_at"] - (time.time() + settings.TOKEN_RECHECK_INTERVAL)) < 5


def test_issue9_item7_iat_is_not_checked_and_expire_at_replaces_exp(call: Call) -> None:
    now = int(time.time())
    token = jwt.encode({"sub": "42", "exp": now + 60, "iat": now + 3600, "expire_at": now + 30}, KEY, algorithm="HS256")
    _status, body = call("connect", {"data": {"token": token}})
    assert body["result"]["expire_at"] == now + 30


def test_issue9_item7_a_token_not_valid_yet_is_refused_like_an_expired_one(call: Call) -> None:
    token = jwt.encode({"sub": "42", "nbf": int(time.time()) + 3600}, KEY, algorithm="HS256")
    assert call("connect", {"data": {"token": token}}) == (
        200,
        {"disconnect": {"code": 4502, "reason": "token not valid yet"}},
    )


def test_a_token_whose_header_names_a_non_hmac_algorithm_is_refused(call: Call) -> None:
    signed = jwt.encode({"sub": "42", "exp": 4102444800}, KEY, algorithm="HS256")
    _header, payload, signature = signed.split(".")
    header = jwt.utils.base64url_encode(b'{"alg":"RS256","typ":"JWT"}').decode()
    _status, body = call("connect", {"data": {"token": f"{header}.{payload}.{signature}"}})
    assert body == {"disconnect": {"code": 4501, "reason": "invalid token: The specified alg value is not allowed"}}


def test_an_unsigned_alg_none_token_is_refused(call: Call) -> None:
    token = jwt.encode({"sub": "42", "exp": 4102444800}, None, algorithm="none")  # type: ignore[arg-type]
    _status, body = call("connect", {"data": {"token": token}})
    assert body["disconnect"]["code"] == 4501


def test_garbage_instead_of_a_token_is_refused(call: Call) -> None:
    _status, body = call("connect", {"data": {"token": "not.a.jwt"}})
    assert body["disconnect"]["code"] == 4501


def test_no_token_connects_anonymously_when_allowed(call: Call) -> None:
    assert call("connect", {}) == (200, {"result": {"user": ""}})
    assert call("connect", {"data": {"hello": 1}}) == (200, {"result": {"user": ""}})
    assert call("connect", {"data": "just a string"}) == (200, {"result": {"user": ""}})


def test_no_token_is_disconnected_when_anonymous_is_off(call: Call, settings: object) -> None:
    settings.ALLOW_ANONYMOUS = False  # type: ignore[attr-defined]
    assert call("connect", {}) == (200, {"disconnect": {"code": 4503, "reason": "unauthorized"}})


def test_a_logged_in_session_cookie_authenticates(client: Client, call: Call, redis_url: str) -> None:
    user = User.objects.create_user("ann", password="pw-for-tests-only", is_staff=True)
    user.groups.add(Group.objects.create(name="editors"))
    client.force_login(user)
    _status, body = call("connect", {})
    result = body["result"]
    assert result["user"] == str(user.pk)
    assert result["meta"]["roles"] == ["editors", "staff"]
    assert result["meta"]["auth"] == "session"
    assert result["meta"]["sid"] == client.session.session_key


def test_refresh_extends_a_live_session_and_expires_a_dead_one(client: Client, call: Call, redis_url: str) -> None:
    user = User.objects.create_user("bob", password="pw-for-tests-only")
    client.force_login(user)
    meta = call("connect", {})[1]["result"]["meta"]
    _status, body = call("refresh", {"user": str(user.pk), "meta": meta})
    assert body["result"]["expire_at"] > time.time()
    client.logout()
    assert call("refresh", {"user": str(user.pk), "meta": meta}) == (200, {"result": {"expired": True}})


def test_refresh_expires_token_connections_so_the_client_presents_a_new_token(call: Call) -> None:
    assert call("refresh", {"user": "42", "meta": {"auth": "token"}}) == (200, {"result": {"expired": True}})
