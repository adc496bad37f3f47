"""Issue 13, item 1 (opt-in): proxy-only connection tokens, signed with a key derived from
CENTRIFUGO_TOKEN_HMAC_SECRET_KEY that Centrifugo does not have, accepted only by the connect proxy."""

from __future__ import annotations

import hashlib
import hmac
import io
from typing import Any

import jwt
import pytest
from django.core.management import call_command

from callbacks.tests.conftest import Call
from callbacks.tokens import PROXY_ONLY_KID, TokenRejected, connection_token_issue, proxy_only_key, token_verify
from control import models

pytestmark = pytest.mark.django_db  # the command records what it issues

KEY = "test-hmac-secret-key-0123456789abcdef-0123456789abcdef-0123456789"
DERIVED = hmac.new(KEY.encode(), b"rtgw proxy-only connection tokens", hashlib.sha512).digest()
CLAIMS = {"sub": "42", "exp": 4102444800, "jti": "j1", "iat": 1}


def test_issue13_item1_proxy_only_key_is_derived_from_the_main_key_and_differs_from_it() -> None:
    assert proxy_only_key() == DERIVED
    assert KEY.encode() != DERIVED


@pytest.mark.parametrize("proxy_only", [False, True])
def test_issue13_item1_proxy_only_token_verify_accepts_both_kinds(call: Call, proxy_only: bool) -> None:
    token = connection_token_issue(user="42", ttl=60, meta={"roles": ["editor"]}, proxy_only=proxy_only)
    assert (jwt.get_unverified_header(token).get("kid") == PROXY_ONLY_KID) is proxy_only
    verified = token_verify(token)
    assert (verified.user, verified.meta["roles"]) == ("42", ["editor"])
    status, body = call("connect", {"data": {"token": token}})
    assert status == 200
    assert body["result"]["user"] == "42"
    assert body["result"]["meta"]["auth"] == "token"


def test_issue13_item1_proxy_only_token_is_refused_by_the_key_centrifugo_has() -> None:
    """What Centrifugo does with it in the `token` field: its HMAC verifier ignores `kid` and checks
    the signature with the main key."""
    token = connection_token_issue(user="42", ttl=60, proxy_only=True)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, KEY, algorithms=["HS256"])


@pytest.mark.parametrize(
    ("key", "headers"),
    [
        (KEY, {"kid": PROXY_ONLY_KID}),  # marked proxy-only, signed with the main key
        (DERIVED, None),  # signed with the derived key, not marked
        (DERIVED, {"kid": "another"}),  # another kid: the main key, as Centrifugo
    ],
)
def test_issue13_item1_proxy_only_a_token_signed_with_the_other_kind_of_key_is_refused(
    call: Call, key: str | bytes, headers: dict[str, Any] | None
) -> None:
    token = jwt.encode(CLAIMS, key, algorithm="HS256", headers=headers)
    with pytest.raises(TokenRejected, match="Signature verification failed"):
        token_verify(token)
    assert call("connect", {"data": {"token": token}}) == (
        200,
        {"disconnect": {"code": 4501, "reason": "invalid token: Signature verification failed"}},
    )


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_issue13_item1_proxy_only_the_hmac_algorithms_are_accepted_with_the_derived_key(algorithm: str) -> None:
    token = jwt.encode(CLAIMS, DERIVED, algorithm=algorithm, headers={"kid": PROXY_ONLY_KID})
    assert token_verify(token).user == "42"


def test_issue13_item1_proxy_only_alg_pinning_is_unchanged(call: Call) -> None:
    signed = jwt.encode(CLAIMS, DERIVED, algorithm="HS256", headers={"kid": PROXY_ONLY_KID})
    _header, payload, signature = signed.split(".")
    for header in (
        b'{"alg":"RS256","typ":"JWT","kid":"rtgw-proxy-only"}',
        b'{"alg":"none","typ":"JWT","kid":"rtgw-proxy-only"}',
    ):
        forged = f"{jwt.utils.base64url_encode(header).decode()}.{payload}.{signature}"
        _status, body = call("connect", {"data": {"token": forged}})
        assert body == {"disconnect": {"code": 4501, "reason": "invalid token: The specified alg value is not allowed"}}
    unsigned = jwt.encode(CLAIMS, None, algorithm="none", headers={"kid": PROXY_ONLY_KID})  # type: ignore[arg-type]
    assert call("connect", {"data": {"token": unsigned}})[1]["disconnect"]["code"] == 4501
    not_a_string = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT","kid":7}').decode()
    _status, body = call("connect", {"data": {"token": f"{not_a_string}.{payload}.{signature}"}})
    assert body == {"disconnect": {"code": 4501, "reason": "invalid token: Key ID header parameter must be a string"}}


def _issue(*args: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("issue_connection_token", "42", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue().strip(), stderr.getvalue()


def _is_proxy_only(token: str) -> bool:
    return jwt.get_unverified_header(token).get("kid") == PROXY_ONLY_KID


def test_issue13_item1_proxy_only_the_command_flag_and_its_setting_default(settings: Any) -> None:
    token, said = _issue()
    assert not _is_proxy_only(token)  # the default behaviour is unchanged
    assert jwt.decode(token, KEY, algorithms=["HS256"])["sub"] == "42"
    assert "proxy-only" not in said

    token, said = _issue("--proxy-only")
    assert _is_proxy_only(token)
    assert jwt.decode(token, DERIVED, algorithms=["HS256"])["sub"] == "42"
    assert "proxy-only: put it in the connect data" in said
    claims = jwt.decode(token, options={"verify_signature": False})
    assert models.IssuedToken.objects.get(jti=claims["jti"]).kind == models.IssuedToken.KIND_CONNECTION
    assert models.AuditEntry.objects.get(action="token.issued", target=claims["jti"]).detail["proxy_only"] is True

    settings.TOKEN_PROXY_ONLY = True
    assert _is_proxy_only(_issue()[0])
    assert not _is_proxy_only(_issue("--no-proxy-only")[0])


def test_issue13_item1_proxy_only_subscription_tokens_are_unaffected(settings: Any) -> None:
    settings.TOKEN_PROXY_ONLY = True
    stdout = io.StringIO()
    call_command("issue_subscription_token", "42", "chat:a", stdout=stdout, stderr=io.StringIO())
    token = stdout.getvalue().strip()
    assert "kid" not in jwt.get_unverified_header(token)
    assert jwt.decode(token, KEY, algorithms=["HS256"])["channel"] == "chat:a"
