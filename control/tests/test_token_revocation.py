"""Issue 13, items 1 and 5: issued tokens are recorded and audited; revoke_token / revoke_tokens
revoke them (in the rule-set snapshot every callback reads) with clear errors."""

from __future__ import annotations

import datetime
import io
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from callbacks import server_api
from callbacks.tests.test_presence_api import FakeCentrifugo
from control import models
from partitions.selectors import ruleset_load, ruleset_version

pytestmark = pytest.mark.django_db


def _issue(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def _jti(token: str) -> str:
    jti: str = jwt.decode(token, options={"verify_signature": False})["jti"]
    return jti


@pytest.fixture
def centrifugo(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCentrifugo]:
    fake = FakeCentrifugo()
    fake.answers["disconnect"] = {"result": {}}
    fake.answers["unsubscribe"] = {"result": {}}
    settings.CENTRIFUGO_API_URL = fake.url
    monkeypatch.setattr(server_api._connections, "held", None, raising=False)
    yield fake
    fake.stop()


def test_issue13_item1_every_issued_token_is_recorded_and_audited_never_stored() -> None:
    token = _issue("issue_connection_token", "42", "--ttl", "600", "--meta", '{"roles": ["editor"]}')
    claims = jwt.decode(token, options={"verify_signature": False})
    assert len(claims["jti"]) == 32
    assert claims["meta"]["jti"] == claims["jti"]
    assert (claims["meta"]["iat"], claims["meta"]["exp"]) == (claims["iat"], claims["exp"])
    row = models.IssuedToken.objects.get(jti=claims["jti"])
    assert (row.kind, row.user, row.ttl, row.meta["roles"]) == ("connection", "42", 600, ["editor"])
    assert row.expires_at == datetime.datetime.fromtimestamp(claims["exp"], tz=datetime.UTC)
    assert row.issued_by.startswith("command:issue_connection_token")
    entry = models.AuditEntry.objects.get(action="token.issued", target=claims["jti"])
    assert entry.detail == {"user": "42", "kind": "connection", "channel": "", "ttl": 600}

    sub = _issue("issue_subscription_token", "42", "chat:room1", "--ttl", "60")
    row = models.IssuedToken.objects.get(jti=_jti(sub))
    assert (row.kind, row.channel, row.ttl) == ("subscription", "chat:room1", 60)
    every_field = [str(getattr(r, f.name)) for r in models.IssuedToken.objects.all() for f in r._meta.fields]
    every_field += [str(e.detail) for e in models.AuditEntry.objects.all()]
    assert not any(token in text or sub in text for text in every_field)  # a bearer credential: never kept


def test_issue13_item1_meta_may_not_set_the_reserved_keys() -> None:
    with pytest.raises(CommandError, match="--meta: meta may not set iat, jti: the gateway sets them"):
        _issue("issue_connection_token", "42", "--meta", '{"jti": "mine", "iat": 1}')
    assert not models.IssuedToken.objects.exists()


def test_issue13_item5_revoke_token_takes_effect_in_the_rule_set_and_is_audited(centrifugo: FakeCentrifugo) -> None:
    jti = _jti(_issue("issue_connection_token", "42"))
    version = ruleset_version()
    said = io.StringIO()
    call_command("revoke_token", jti, "--reason", "leaked in a log", stdout=said)
    assert f"revoked connection token {jti} of user '42'" in said.getvalue()
    assert ruleset_version() == version + 1  # every process reloads, as for a rule change
    access = ruleset_load().access
    assert access.refusal(user="42", jti=jti, iat=int(time.time()), now=time.time()) is not None
    row = models.IssuedToken.objects.get(jti=jti)
    assert row.revoked_at is not None
    assert row.revoke_reason == "leaked in a log"
    entry = models.AuditEntry.objects.get(action="token.revoked")
    assert (entry.target, entry.reason, entry.actor.startswith("command:revoke_token")) == (
        jti, "leaked in a log", True
    )  # fmt: skip
    assert centrifugo.calls == []  # a connection token: the checks cut its connections


def test_issue13_item5_revoke_token_errors_are_clear() -> None:
    with pytest.raises(CommandError, match="no token with jti 'nope' was issued here"):
        call_command("revoke_token", "nope")
    jti = _jti(_issue("issue_connection_token", "42"))
    call_command("revoke_token", jti, stdout=io.StringIO())
    with pytest.raises(CommandError, match=f"token {jti} was already revoked at .* by command:revoke_token"):
        call_command("revoke_token", jti)
    assert models.AuditEntry.objects.filter(action="token.revoked").count() == 1


def test_issue13_item5_revoking_a_subscription_token_ends_its_subscriptions_at_once(
    centrifugo: FakeCentrifugo,
) -> None:
    jti = _jti(_issue("issue_subscription_token", "42", "chat:room1"))
    call_command("revoke_token", jti, stdout=io.StringIO())
    assert [(path, body) for path, _key, body in centrifugo.calls] == [
        ("/api/unsubscribe", {"user": "42", "channel": "chat:room1"})
    ]


def test_issue13_item5_revoke_tokens_sets_a_cutoff_marks_the_rows_and_drops_connections(
    centrifugo: FakeCentrifugo,
) -> None:
    old = _jti(_issue("issue_connection_token", "42"))
    other = _jti(_issue("issue_connection_token", "43"))
    said = io.StringIO()
    revoked_at = time.time()
    call_command("revoke_tokens", "42", "--reason", "stolen laptop", stdout=said)
    assert "revoked the tokens of user '42' issued before" in said.getvalue()
    cutoff = models.UserTokenCutoff.objects.get(user="42")
    assert cutoff.before.microsecond == 0
    assert cutoff.before.timestamp() > time.time() - 2
    access = ruleset_load().access
    now = time.time()
    iat = int(revoked_at)  # issued in the second of the revocation: covered (the cutoff is rounded up)
    assert access.refusal(user="42", jti="unrecorded", iat=iat, now=now) is not None
    assert access.refusal(user="42", jti="", iat=int(cutoff.before.timestamp()), now=now) is None  # a later token
    assert access.refusal(user="43", jti=other, iat=iat, now=now) is None
    assert models.IssuedToken.objects.get(jti=old).revoked_at is not None
    assert models.IssuedToken.objects.get(jti=other).revoked_at is None
    assert [(path, body) for path, _key, body in centrifugo.calls] == [
        ("/api/disconnect", {"user": "42", "disconnect": {"code": 4104, "reason": "tokens revoked"}})
    ]
    entry = models.AuditEntry.objects.get(action="tokens.revoked")
    assert (entry.target, entry.reason, entry.detail["recorded_tokens_marked"]) == ("42", "stolen laptop", 1)


@pytest.mark.parametrize(
    ("before", "cutoff"),
    [
        ("1700000000", datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC)),
        ("2023-11-14T22:13:20Z", datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC)),
        ("2023-11-14T23:13:20.5+01:00", datetime.datetime(2023, 11, 14, 22, 13, 21, tzinfo=datetime.UTC)),
    ],
)
def test_issue13_item5_revoke_tokens_before_takes_iso_or_unix_seconds(
    centrifugo: FakeCentrifugo, before: str, cutoff: datetime.datetime
) -> None:
    call_command("revoke_tokens", "42", "--before", before, stdout=io.StringIO())
    assert models.UserTokenCutoff.objects.get(user="42").before == cutoff


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["42", "--before", "yesterday"], "expected ISO 8601 .* or unix seconds, got 'yesterday'"),
        (["42", "--before", "1e300"], "out of range"),
        (["42", "--before", "4102444800"], "is in the future: to refuse new connects, ban the user"),
        (["  "], "USER cannot be empty"),
    ],
)
def test_issue13_item5_revoke_tokens_refuses_bad_input(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("revoke_tokens", *args)
    assert not models.UserTokenCutoff.objects.exists()


def test_issue13_item5_revoke_tokens_stands_when_centrifugo_is_down(settings: Any) -> None:
    settings.CENTRIFUGO_API_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    stderr = io.StringIO()
    call_command("revoke_tokens", "42", stdout=io.StringIO(), stderr=stderr)
    assert "warning: Centrifugo did not drop '42''s connections now" in stderr.getvalue()
    assert "the revocation is in force anyway" in stderr.getvalue()
    assert models.UserTokenCutoff.objects.filter(user="42").exists()
