"""Issue 13, item 5 (audit) and the Tokens page: the admin lists issued tokens read-only and
revokes them (one by one, or every token of their users) behind a reason form, audited with the
admin user as actor."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from callbacks import server_api
from callbacks.tests.test_presence_api import FakeCentrifugo
from control import models, services
from partitions.selectors import ruleset_load

pytestmark = pytest.mark.django_db
PAGE = "/admin/control/issuedtoken/"


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    return client


@pytest.fixture
def centrifugo(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCentrifugo]:
    fake = FakeCentrifugo()
    fake.answers["disconnect"] = {"result": {}}
    fake.answers["unsubscribe"] = {"result": {}}
    settings.CENTRIFUGO_API_URL = fake.url
    monkeypatch.setattr(server_api._connections, "held", None, raising=False)
    yield fake
    fake.stop()


def _issue(user: str) -> models.IssuedToken:
    services.connection_token_issue(user=user, ttl=600, actor="command:test")
    return models.IssuedToken.objects.filter(user=user).latest("id")


def test_issue13_item5_the_tokens_page_lists_filters_and_searches_read_only(operator: Client) -> None:
    token = _issue("alice")
    _issue("bob")
    page = operator.get(PAGE, {"q": "alice"}).content.decode()
    assert token.jti in page
    assert "bob" not in page
    assert token.jti in operator.get(PAGE, {"revoked": "no", "expired": "no", "kind": "connection"}).content.decode()
    assert token.jti not in operator.get(PAGE, {"revoked": "yes"}).content.decode()
    change = operator.get(f"{PAGE}{token.pk}/change/").content.decode()
    assert 'name="jti"' not in change  # read-only: no form field
    assert operator.get(f"{PAGE}add/").status_code == 403
    assert operator.get("/admin/control/usertokencutoff/").status_code == 200


def test_issue13_item5_revoke_selected_asks_a_reason_then_revokes_and_audits_as_the_admin(
    operator: Client, centrifugo: FakeCentrifugo
) -> None:
    token, other = _issue("alice"), _issue("bob")
    ask = operator.post(PAGE, {"action": "revoke_tokens", "_selected_action": [token.pk]})
    assert ask.status_code == 200
    assert 'name="reason"' in ask.content.decode()
    assert models.IssuedToken.objects.get(pk=token.pk).revoked_at is None  # not before it is confirmed
    done = operator.post(
        PAGE, {"action": "revoke_tokens", "_selected_action": [token.pk], "apply": "1", "reason": "phished"}
    )
    assert done.status_code == 302
    token.refresh_from_db()
    assert (token.revoked_by, token.revoke_reason) == ("ops", "phished")
    assert models.IssuedToken.objects.get(pk=other.pk).revoked_at is None
    entry = models.AuditEntry.objects.get(action="token.revoked")
    assert (entry.actor, entry.target, entry.reason) == ("ops", token.jti, "phished")
    assert ruleset_load().access.refusal(user="alice", jti=token.jti, iat=0, now=time.time()) is not None


def test_issue13_item5_revoke_all_tokens_of_these_users_sets_cutoffs_and_drops_connections(
    operator: Client, centrifugo: FakeCentrifugo
) -> None:
    token = _issue("alice")
    operator.post(PAGE, {"action": "revoke_users_tokens", "_selected_action": [token.pk], "apply": "1",
                         "reason": "left the company"})  # fmt: skip
    cutoff = models.UserTokenCutoff.objects.get(user="alice")
    assert (cutoff.actor, cutoff.reason) == ("ops", "left the company")
    entry = models.AuditEntry.objects.get(action="tokens.revoked")
    assert (entry.actor, entry.target) == ("ops", "alice")
    assert [(path, body["user"]) for path, _key, body in centrifugo.calls] == [("/api/disconnect", "alice")]


def test_issue13_item5_a_staff_user_without_the_permission_cannot_revoke(client: Client) -> None:
    viewer = User.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_issuedtoken"))
    client.force_login(viewer)
    token = _issue("alice")
    page = client.get(PAGE).content.decode()
    assert token.jti in page
    assert "revoke_tokens" not in page
    client.post(PAGE, {"action": "revoke_tokens", "_selected_action": [token.pk], "apply": "1"})
    assert models.IssuedToken.objects.get(pk=token.pk).revoked_at is None
