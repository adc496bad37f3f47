from __future__ import annotations

import io

import jwt
import pytest
from django.core.management import call_command
from django.test import override_settings

from callbacks.tokens import subscription_token_issue

pytestmark = pytest.mark.django_db  # the commands record what they issue (control.IssuedToken)

KEY = "test-hmac-secret-key-0123456789abcdef-0123456789abcdef-0123456789"


@override_settings(TOKEN_AUDIENCE="rtgw", TOKEN_ISSUER="https://issuer.example")
def test_issue9_item8_subscription_tokens_carry_the_audience_and_issuer() -> None:
    token = subscription_token_issue(user="42", channel="chat:room1", ttl=60)
    claims = jwt.decode(token, KEY, algorithms=["HS256"], audience="rtgw", issuer="https://issuer.example")
    assert (claims["sub"], claims["channel"], claims["aud"], claims["iss"]) == (
        "42", "chat:room1", "rtgw", "https://issuer.example"
    )  # fmt: skip


@override_settings(TOKEN_AUDIENCE="rtgw", TOKEN_ISSUER="https://issuer.example")
@pytest.mark.parametrize("command", [["issue_connection_token", "42"], ["issue_subscription_token", "42", "chat:a"]])
def test_issue9_item8_the_commands_say_what_the_token_carries_on_stderr(command: list[str]) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*command, stdout=stdout, stderr=stderr)
    token = stdout.getvalue().strip()
    assert jwt.decode(token, KEY, algorithms=["HS256"], audience="rtgw")["sub"] == "42"  # stdout: the token only
    said = stderr.getvalue()
    assert "HS256 token for sub='42'" in said
    assert "aud='rtgw' (TOKEN_AUDIENCE), iss='https://issuer.example' (TOKEN_ISSUER)" in said
    assert "(--ttl 3600 s)" in said
    assert "warning" not in said


@override_settings(TOKEN_AUDIENCE=None, TOKEN_ISSUER=None, SETTINGS_MODULE="realtime.settings.production")
def test_issue9_item8_a_production_shell_without_audience_and_issuer_is_warned() -> None:
    stderr = io.StringIO()
    call_command("issue_connection_token", "42", stdout=io.StringIO(), stderr=stderr)
    assert "warning: TOKEN_AUDIENCE and TOKEN_ISSUER unset in this shell" in stderr.getvalue()
    assert "aud=None (TOKEN_AUDIENCE), iss=None (TOKEN_ISSUER)" in stderr.getvalue()
