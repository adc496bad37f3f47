"""The admin: the Users page, the Ban list through the services, the read-only audit trail
(issue 13, items 2 and 5)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from control import models
from control.tests.conftest import FakeCentrifugo
from partitions.selectors import ruleset_version

pytestmark = pytest.mark.django_db
USERS = "/admin/control/users/"


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    return client


def token(user: str, jti: str, *, revoked: bool = False) -> None:
    now = timezone.now()
    models.IssuedToken.objects.create(
        jti=jti, kind="connection", user=user, issued_at=now, expires_at=now + dt.timedelta(hours=1), ttl=3600,
        issued_by="test", revoked_at=now if revoked else None,
    )  # fmt: skip


def rows(page: str) -> list[str]:
    return [chunk.split('"', 1)[0] for chunk in page.split('class="user-row" data-user="')[1:]]


def test_issue13_item2_users_page_lists_token_ban_and_django_users(operator: Client) -> None:
    token("alice", "j1")
    token("alice", "j2", revoked=True)
    models.Ban.objects.create(user="zed", reason="spam", actor="ops")
    models.Ban.objects.create(user="old", reason="", actor="ops", until=timezone.now() - dt.timedelta(seconds=1))
    ops = User.objects.get(username="ops")
    page = operator.get(USERS).content.decode()
    assert rows(page) == ["zed", str(ops.pk), "alice"]  # banned first; an ended ban is no reason to list
    assert "<strong>banned</strong> until unbanned: spam" in page
    alice = page.split('data-user="alice"')[1].split("</tr>")[0]
    assert '<a href="/admin/control/issuedtoken/?user=alice">2</a>' in alice  # issued, on the Tokens page
    assert "<td>1</td>" in alice  # revoked
    tokens = operator.get("/admin/control/issuedtoken/", {"user": "alice"})
    assert tokens.status_code == 200
    assert sorted(t.jti for t in tokens.context["cl"].result_list) == ["j1", "j2"]


def test_issue13_item2_users_page_search_by_id_login_or_an_unknown_id(operator: Client) -> None:
    token("alice", "j1")
    token("bob", "j2")
    ops = User.objects.get(username="ops")
    assert rows(operator.get(USERS, {"q": "ali"}).content.decode()) == ["ali", "alice"]
    assert rows(operator.get(USERS, {"q": "op"}).content.decode()) == [str(ops.pk), "op"]  # login "ops"; "op" itself
    page = operator.get(USERS, {"q": str(ops.pk)}).content.decode()
    assert rows(page) == [str(ops.pk)]
    assert "<td>ops</td>" in page
    assert "(seen nowhere here)" in operator.get(USERS, {"q": "ghost-7"}).content.decode()


def test_issue13_item2_users_page_bans_disconnects_and_unbans(operator: Client, centrifugo: FakeCentrifugo) -> None:
    version = ruleset_version()
    response = operator.post(USERS, {"user": "eve", "action": "ban", "reason": "spam", "duration": "2h", "q": "ev"})
    assert response.status_code == 302
    assert response["Location"] == f"{USERS}?q=ev"
    ban = models.Ban.objects.get(user="eve")
    assert (ban.reason, ban.actor) == ("spam", "ops")
    assert ban.until is not None
    assert ruleset_version() == version + 1
    assert [body["disconnect"]["code"] for _, body in centrifugo.calls] == [4505, 4505]
    page = operator.get(f"{USERS}?q=ev", follow=True).content.decode()
    assert "Banned &#x27;eve&#x27; until" in page
    assert "<strong>banned</strong> until" in page

    operator.post(USERS, {"user": "eve", "action": "disconnect", "reason": "again"})
    assert centrifugo.calls[-1] == (
        "disconnect",
        {"user": "eve", "disconnect": {"code": 4005, "reason": "disconnected: again"}},
    )
    operator.post(USERS, {"user": "eve", "action": "unban"})
    assert not models.Ban.objects.exists()
    actions = list(models.AuditEntry.objects.order_by("id").values_list("action", "actor"))
    assert actions == [("user.banned", "ops"), ("user.disconnected", "ops"), ("user.disconnected", "ops"),
                       ("user.unbanned", "ops")]  # fmt: skip


def test_issue13_item2_users_page_says_what_went_wrong(operator: Client, centrifugo_down: str) -> None:
    page = operator.post(USERS, {"user": "eve", "action": "ban", "duration": "soon"}, follow=True).content.decode()
    assert "Nothing done: duration: expected a duration such as" in page
    assert not models.Ban.objects.exists()
    page = operator.post(USERS, {"user": "eve", "action": "ban"}, follow=True).content.decode()
    assert "&#x27;eve&#x27; is banned (every callback refuses them" in page
    assert "did not answer" in page
    page = operator.post(USERS, {"user": "eve", "action": "disconnect"}, follow=True).content.decode()
    assert "&#x27;eve&#x27; was NOT disconnected: Centrifugo at" in page
    page = operator.post(USERS, {"user": "bob", "action": "unban"}, follow=True).content.decode()
    assert "&#x27;bob&#x27; is not banned: nothing changed." in page


def test_issue13_item2_users_page_is_for_staff_and_acting_needs_the_ban_permission(
    client: Client, centrifugo: FakeCentrifugo
) -> None:
    assert client.get(USERS)["Location"].startswith("/admin/login/")
    client.force_login(User.objects.create_user("visitor", password="pw-for-tests-only"))
    assert client.get(USERS)["Location"].startswith("/admin/login/")  # not staff
    staff = User.objects.create_user("helpdesk", password="pw-for-tests-only", is_staff=True)
    client.force_login(staff)
    assert client.get(USERS).status_code == 200
    assert client.post(USERS, {"user": "eve", "action": "ban"}).status_code == 403
    assert not models.Ban.objects.exists()
    assert centrifugo.calls == []
    staff.user_permissions.add(Permission.objects.get(codename="change_ban"))
    client.force_login(User.objects.get(pk=staff.pk))
    assert client.post(USERS, {"user": "eve", "action": "ban"}).status_code == 302
    assert models.Ban.objects.filter(user="eve").exists()


def test_issue13_item2_ban_admin_edits_go_through_the_services(operator: Client, centrifugo: FakeCentrifugo) -> None:
    version = ruleset_version()
    response = operator.post("/admin/control/ban/add/", {"user": "eve", "reason": "spam", "until": ""})
    assert response.status_code == 302, response.content.decode()[-2000:]
    ban = models.Ban.objects.get()
    assert ban.actor == "ops"
    assert ruleset_version() == version + 1
    assert len(centrifugo.calls) == 2
    response = operator.post(
        f"/admin/control/ban/{ban.pk}/change/", {"reason": "worse", "until_0": "2999-01-01", "until_1": "00:00:00"}
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert models.Ban.objects.get().reason == "worse"
    assert ruleset_version() == version + 2
    operator.post(f"/admin/control/ban/{ban.pk}/delete/", {"post": "yes"})
    assert not models.Ban.objects.exists()
    assert ruleset_version() == version + 3
    assert list(models.AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "user.banned", "user.disconnected", "user.banned", "user.disconnected", "user.unbanned",
    ]  # fmt: skip


def test_issue13_item2_ban_admin_refuses_an_end_in_the_past(operator: Client, centrifugo: FakeCentrifugo) -> None:
    response = operator.post("/admin/control/ban/add/", {"user": "eve", "until_0": "2000-01-01", "until_1": "00:00"})
    assert "The ban would end before it starts" in response.content.decode()
    assert not models.Ban.objects.exists()
    assert centrifugo.calls == []


def test_issue13_item5_audit_trail_is_read_only_filterable_and_searchable(operator: Client) -> None:
    models.AuditEntry.objects.create(actor="ops", action="user.banned", target="eve", reason="spam")
    models.AuditEntry.objects.create(actor="command:unban", action="user.unbanned", target="bob")
    base = "/admin/control/auditentry/"
    assert rows_of(operator.get(base, {"action": "user.banned"})) == ["eve"]
    assert rows_of(operator.get(base, {"actor": "command:unban"})) == ["bob"]
    assert rows_of(operator.get(base, {"q": "ev"})) == ["eve"]
    entry = models.AuditEntry.objects.get(target="eve")
    assert operator.get(f"{base}add/").status_code == 403
    change = operator.get(f"{base}{entry.pk}/change/").content.decode()
    assert 'name="target"' not in change
    assert "Delete" not in change
    assert operator.post(f"{base}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert models.AuditEntry.objects.count() == 2


def rows_of(response: object) -> list[str]:
    return sorted(entry.target for entry in response.context["cl"].result_list)  # type: ignore[attr-defined]


def test_issue13_item2_the_admin_index_links_the_users_page(operator: Client) -> None:
    assert f'href="{USERS}"' in operator.get("/admin/").content.decode()
