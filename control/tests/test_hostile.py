"""Hostile or careless input to the operator controls (issue 13, hostile probe): each gets a clear
4xx, a form error or a CommandError, never a 500 or a traceback, and nothing is written on refusal.
PostgreSQL refuses NUL in text and ids longer than the column with an error mid-transaction; SQLite
(the test database) takes both, so these tests pin the refusal itself."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from control import liveview, models, services, when
from control.tests.conftest import FakeCentrifugo
from partitions.models import ChannelRule
from partitions.services import rule_save
from partitions.store import rules_store

pytestmark = pytest.mark.django_db
USERS = "/admin/control/users/"


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    return client


def nothing_written() -> bool:
    return not (
        models.Ban.objects.exists() or models.UserTokenCutoff.objects.exists() or models.AuditEntry.objects.exists()
    )


@pytest.mark.parametrize(
    ("command", "args"),
    [("ban", ["x" * 10_000]), ("disconnect", ["x" * 10_000]), ("revoke_tokens", ["x" * 10_000]), ("ban", ["a\x00b"])],
)
def test_issue13_hostile_commands_refuse_a_user_id_no_table_can_hold(
    centrifugo: FakeCentrifugo, command: str, args: list[str]
) -> None:
    with pytest.raises(CommandError, match=r"a user id (is at most 255 characters|cannot contain NUL)"):
        call_command(command, *args)
    assert nothing_written()
    assert centrifugo.calls == []


def test_issue13_hostile_services_refuse_a_user_id_no_table_can_hold(
    operator: Client, centrifugo: FakeCentrifugo
) -> None:
    for user in ("x" * 256, "a\x00b"):
        # The Users page's own form refuses these already; the services refuse them for any caller.
        with pytest.raises(ValueError, match="a user id"):
            services.user_ban(user=user, actor="ops")
    assert nothing_written()


@pytest.mark.parametrize("query", ["a\x00b", "\x00", "x" * 300])
def test_issue13_hostile_users_search_with_nul_or_too_long_is_a_400(operator: Client, query: str) -> None:
    page = operator.get(USERS, {"q": query})
    assert page.status_code == 400
    assert "No user searched: a user id" in page.content.decode()


def test_issue13_hostile_users_search_with_a_huge_number_is_no_500(operator: Client) -> None:
    page = operator.get(USERS, {"q": "9" * 5000})  # int() refuses more than 4300 digits
    assert page.status_code == 400
    page = operator.get(USERS, {"q": "9" * 30})  # past any row id: searched as text only
    assert page.status_code == 200
    assert 'data-user="' + "9" * 30 + '"' in page.content.decode()


def test_issue13_hostile_users_page_answers_405_to_other_methods(operator: Client) -> None:
    for method in (operator.put, operator.delete, operator.patch):
        assert method(USERS).status_code == 405


def test_issue13_hostile_reopen_channel_with_a_huge_id_is_a_command_error() -> None:
    for ref in ("9" * 5000, "#" + "9" * 30):
        with pytest.raises(CommandError, match="no closure"):
            call_command("reopen_channel", ref)


def test_issue13_hostile_duration_with_thousands_of_digits_names_the_format() -> None:
    with pytest.raises(ValueError, match="expected a duration such as 90s"):
        when.duration("9" * 5000)


def test_issue13_hostile_live_events_cursor_nested_too_deep_is_a_400(operator: Client) -> None:
    answer = operator.get("/admin/live/events/", {"channel": "chat:1", "cursor": "[" * 3000})
    assert answer.status_code == 400
    assert answer.json() == {"error": "cursor must be the JSON object the last answer gave"}


@pytest.mark.parametrize(
    "url", ["/admin/control/issuedtoken/", "/admin/control/ban/", "/admin/control/channelclosure/"]
)
def test_issue13_hostile_admin_list_filter_with_nul_is_a_400(operator: Client, url: str) -> None:
    # The Users page links to the Tokens list with ?user=<id>; PostgreSQL refuses NUL in text.
    answer = operator.get(url, {"user" if "token" in url else "reason": "a\x00b"})
    assert answer.status_code == 400
    assert b"cannot contain NUL" in answer.content


@pytest.mark.parametrize(
    ("url", "action"),
    [
        ("/admin/control/issuedtoken/", "revoke_tokens"),
        ("/admin/control/issuedtoken/", "revoke_users_tokens"),
        ("/admin/control/ban/", "delete_selected"),
        ("/admin/control/channelclosure/", "reopen"),
    ],
)
def test_issue13_hostile_admin_action_on_forged_ids_does_nothing(
    operator: Client, centrifugo: FakeCentrifugo, url: str, action: str
) -> None:
    models.Ban.objects.create(user="zed", reason="spam", actor="ops")
    for forged in (["abc"], ["9" * 30], ["1", "²"]):
        answer = operator.post(url, {"action": action, "_selected_action": forged, "apply": "1", "post": "yes"})
        assert answer.status_code == 302
        assert "Nothing done: the selection names rows that do not exist." in [
            str(m)
            for m in answer.wsgi_request._messages  # type: ignore[attr-defined]
        ]
    assert models.Ban.objects.filter(user="zed").exists()
    assert not models.AuditEntry.objects.exists()
    assert centrifugo.calls == []


# A time PostgreSQL stores but Python cannot read back (year 10000 or BC in UTC) in a ban or a
# cutoff would break every process's access snapshot load (control.selectors.access_load).
@pytest.mark.parametrize(
    "args",
    [
        ["ban", "a", "--until", "9999-12-31T23:59:59-12:00"],
        ["revoke_tokens", "a", "--before", "0001-01-01T00:00:00+12:00"],
        ["revoke_tokens", "a", "--before", "-5"],
    ],
)
def test_issue13_hostile_commands_refuse_a_time_the_database_cannot_give_back(
    centrifugo: FakeCentrifugo, args: list[str]
) -> None:
    with pytest.raises(CommandError, match="out of range: a time must be between 1970 and 9999"):
        call_command(*args)
    assert nothing_written()


def test_issue13_hostile_services_refuse_a_time_the_database_cannot_give_back(centrifugo: FakeCentrifugo) -> None:
    far = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=-12)))
    with pytest.raises(ValueError, match="out of range"):
        services.user_ban(user="a", actor="ops", until=far)
    early = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=12)))
    with pytest.raises(services.TokenRevokeError, match="out of range"):
        services.tokens_revoke(user="a", actor="ops", before=early)
    assert nothing_written()


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["issue_connection_token", "x" * 10_000], "argument user: at most 255 characters"),
        (["issue_subscription_token", "a", "chat:" + "x" * 300], "argument channel: at most 255 characters"),
        (["issue_subscription_token", "x" * 300, "chat:1"], "argument user: at most 255 characters"),
        (["issue_connection_token", "a", "--meta", "[" * 5000], "argument --meta: not valid JSON"),
        (["issue_connection_token", "a", "--info", "[" * 5000], "argument --info: not valid JSON"),
    ],
)
def test_issue13_hostile_token_commands_refuse_what_cannot_be_recorded(args: list[str], problem: str) -> None:
    with pytest.raises(CommandError, match=problem):
        call_command(*args)
    assert not models.IssuedToken.objects.exists()


def test_issue13_hostile_close_channel_refuses_a_reason_every_refusal_would_carry(operator: Client) -> None:
    with pytest.raises(CommandError, match="reason: A reason is at most 1000 characters"):
        call_command("close_channel", "chat:*", "--reason", "r" * 100_000)
    page = operator.post(
        "/admin/control/channelclosure/add/",
        {"pattern": "chat:*", "reason": "r" * 100_000, "close_publish": "on", "enabled": "on"},
    )
    assert page.status_code == 200
    assert "A reason is at most 1000 characters" in page.content.decode()
    assert not models.ChannelClosure.objects.exists()
    assert not models.AuditEntry.objects.exists()


def test_issue13_hostile_live_events_cursor_past_redis_ids_is_a_400_not_a_log_outage(
    operator: Client, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(liveview, "centrifugo_call", lambda method, body: {"result": {}})
    rule = ChannelRule.objects.get(pattern="chat:*")
    rule.log_join_leave = True
    rule_save(rule=rule, actor="operator")
    rules_store.invalidate()
    first = operator.get("/admin/live/events/", {"channel": "chat:room1"}).json()
    key = next(iter(first["cursor"]))
    for entry in ("99999999999999999999-1", "1-18446744073709551616"):  # 2**64 and past: Redis refuses them
        answer = operator.get("/admin/live/events/", {"channel": "chat:room1", "cursor": json.dumps({key: entry})})
        assert answer.status_code == 400
        assert answer.json() == {"error": "cursor must map partition keys to entry ids"}
    largest = "18446744073709551615-18446744073709551615"
    answer = operator.get("/admin/live/events/", {"channel": "chat:room1", "cursor": json.dumps({key: largest})})
    assert answer.status_code == 200
    assert "error" not in answer.json()
