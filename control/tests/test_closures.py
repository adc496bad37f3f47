"""The channel kill switch's writes (issue 13, items 3 and 5): the services, the commands and the
admin. Each closure, change and reopening bumps the rule-set version (every process reloads) and
is audited with its actor and reason; bad input is refused with a message naming what is wrong."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command, execute_from_command_line
from django.test import Client

from control import models, services
from partitions.rules import Action, closure_of
from partitions.selectors import ruleset_load, ruleset_version
from partitions.store import rules_store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rules() -> Iterator[None]:
    # A test that reloads this process's rule set (an admin save commits) must not see, nor leave
    # to the tests after it, closures rolled back with a test's database.
    rules_store.invalidate()
    yield
    rules_store.invalidate()


def audit_trail() -> list[tuple[str, str, str, str]]:
    return [(a.actor, a.action, a.target, a.reason) for a in models.AuditEntry.objects.order_by("id")]


def test_issue13_item5_close_change_reopen_are_audited_and_bump_the_version() -> None:
    version = ruleset_version()
    closure = services.channel_close(pattern="chat:*", actor="ops", reason="spam")
    assert ruleset_version() == version + 1
    decision = ruleset_load().decide(Action.PUBLISH, channel="chat:1", user="42")
    found = closure_of(decision)
    assert (decision.allowed, found and found.id) == (False, closure.pk)
    assert ruleset_load().decide(Action.SUBSCRIBE, channel="chat:1", user="42").allowed

    again = services.channel_close(pattern="chat:*", actor="ops2", reason="spam, still", subscribe=True)
    assert again.pk == closure.pk  # one switch per pattern: closing it again changes it
    assert not ruleset_load().decide(Action.SUBSCRIBE, channel="chat:1", user="42").allowed
    services.channel_close(pattern="chat:*", actor="ops2", reason="spam, still", subscribe=True)  # no change

    services.channel_reopen(closure=again, actor="ops3", reason="wave over")
    assert ruleset_version() == version + 3
    assert ruleset_load().decide(Action.PUBLISH, channel="chat:1", user="42").allowed
    assert audit_trail() == [
        ("ops", "channel.closed", "chat:*", "spam"),
        ("ops2", "channel.changed", "chat:*", "spam, still"),
        ("ops3", "channel.reopened", "chat:*", "wave over"),
    ]
    changed = models.AuditEntry.objects.get(action="channel.changed")
    assert changed.detail["before"]["subscribe"] is False
    assert changed.detail["subscribe"] is True


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"pattern": "chat:{user", "reason": "x"}, "pattern", "braces are only allowed as the {user} placeholder"),
        ({"pattern": "", "reason": "x"}, "pattern", "This field cannot be blank."),
        ({"pattern": "chat:*", "reason": "  "}, "reason", "Give a reason"),
        ({"pattern": "chat:*", "reason": "x", "publish": False}, "close_publish", "must close publish, subscribe"),
    ],
)
def test_issue13_item3_a_bad_closure_is_refused_and_changes_nothing(
    kwargs: dict[str, Any], field: str, message: str
) -> None:
    version = ruleset_version()
    with pytest.raises(ValidationError) as refused:
        services.channel_close(actor="ops", **kwargs)
    assert field in refused.value.message_dict
    assert message in " ".join(refused.value.message_dict[field])
    assert (ruleset_version(), models.ChannelClosure.objects.count(), audit_trail()) == (version, 0, [])


def run(*argv: str) -> tuple[int, str, str]:
    """A command as the shell runs it: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            execute_from_command_line(["manage.py", *argv])
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_issue13_item3_the_commands_close_list_and_reopen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "alice")
    status, out, _ = run("close_channel", "chat:*", "--reason", "incident 7", "--subscribe")
    assert status == 0
    closure = models.ChannelClosure.objects.get()
    assert (closure.close_publish, closure.close_subscribe, closure.actor) == (
        True,
        True,
        "command:close_channel (alice)",
    )
    assert out.startswith(f"#{closure.pk}\tchat:*\tclosed\tpublish+subscribe\t")
    status, out, err = run("closures")
    assert (status, out.splitlines()[1].split("\t")[:4]) == (
        0,
        [f"#{closure.pk}", "chat:*", "closed", "publish+subscribe"],
    )
    assert "1 closure(s) in force" in err
    status, out, _ = run("reopen_channel", "chat:*", "--reason", "over")
    assert status == 0
    assert "\treopened\t" in out
    assert audit_trail() == [
        ("command:close_channel (alice)", "channel.closed", "chat:*", "incident 7"),
        ("command:reopen_channel (alice)", "channel.reopened", "chat:*", "over"),
    ]
    # By id too; a closure already lifted is an error.
    status, _, err = run("reopen_channel", f"#{closure.pk}")
    assert status == 1
    assert f"closure #{closure.pk} (chat:*) is not in force" in err
    assert run("closures")[1].splitlines()[1:] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["close_channel", "chat:{user", "--reason", "x"], "channel not closed: pattern: braces are only allowed"),
        (["close_channel", "chat:*", "--reason", ""], "channel not closed: reason: Give a reason"),
        (["close_channel", "chat:*"], "the following arguments are required: --reason"),
        (["reopen_channel", "chat:*"], "no closure 'chat:*' is in force"),
        (["reopen_channel", "#999"], "no closure '#999' is in force"),
    ],
)
def test_issue13_item3_the_commands_refuse_bad_input_with_a_nonzero_exit(argv: list[str], message: str) -> None:
    status, _, err = run(*argv)
    assert status != 0
    assert message in err
    assert models.ChannelClosure.objects.count() == 0


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    return client


FORM = {"pattern": "chat:*", "close_publish": "on", "close_subscribe": "on", "reason": "raid", "enabled": "on"}


def test_issue13_item3_the_admin_closes_through_the_services_with_the_admin_as_actor(
    operator: Client, django_capture_on_commit_callbacks: Any
) -> None:
    version = ruleset_version()
    with django_capture_on_commit_callbacks(execute=True):  # this process reloads as the save commits
        response = operator.post("/admin/control/channelclosure/add/", FORM)
    assert response.status_code == 302, response.content.decode()[-2000:]
    closure = models.ChannelClosure.objects.get()
    assert (closure.actor, ruleset_version()) == ("ops", version + 1)
    assert audit_trail() == [("ops", "channel.closed", "chat:*", "raid")]

    # Shown where operators look at rules: the channel rules list and the rule tester.
    rules_page = operator.get("/admin/partitions/channelrule/").content.decode()
    assert 'id="closures-in-force"' in rules_page
    assert "Kill switch in force:" in rules_page
    assert "<code>chat:*</code>" in rules_page
    tester = operator.get(
        "/admin/partitions/channelrule/tester/", {"user": "42", "channel": "chat:1", "action": "publish"}
    ).content.decode()
    assert "channel closed by an operator (chat:*): raid" in tester
    assert f"Open closure #{closure.pk}" in tester

    response = operator.post(
        "/admin/control/channelclosure/", {"action": "reopen", "_selected_action": [closure.pk]}, follow=True
    )
    assert "Reopened chat:*" in response.content.decode()
    assert audit_trail()[-1] == ("ops", "channel.reopened", "chat:*", "raid")
    trail = operator.get("/admin/control/auditentry/").content.decode()
    assert "channel.closed" in trail
    assert "channel.reopened" in trail
    assert ruleset_version() == version + 2
    assert 'id="closures-in-force"' not in operator.get("/admin/partitions/channelrule/").content.decode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": ""}, "This field is required."),
        ({"pattern": "chat:{user"}, "pattern"),
        ({"close_publish": "", "close_subscribe": ""}, "A closure must close publish, subscribe or both"),
        ({"enabled": ""}, "A new closure is in force"),
    ],
)
def test_issue13_item3_the_admin_refuses_a_bad_closure(operator: Client, change: dict[str, str], message: str) -> None:
    form = {k: v for k, v in {**FORM, **change}.items() if v}
    response = operator.post("/admin/control/channelclosure/add/", form)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert models.ChannelClosure.objects.count() == 0


def test_issue13_item3_a_second_closure_of_a_pattern_in_force_is_refused(operator: Client) -> None:
    services.channel_close(pattern="chat:*", actor="ops", reason="first")
    response = operator.post("/admin/control/channelclosure/add/", FORM)
    assert "&#x27;chat:*&#x27; is already closed (closure #" in response.content.decode()
    assert models.ChannelClosure.objects.count() == 1


def test_issue13_item3_a_closure_is_never_deleted_only_reopened(operator: Client) -> None:
    closure = services.channel_close(pattern="chat:*", actor="ops", reason="first")
    assert operator.get(f"/admin/control/channelclosure/{closure.pk}/delete/").status_code == 403
    out = io.StringIO()
    call_command("closures", "--all", stdout=out, stderr=io.StringIO())
    assert f"#{closure.pk}\tchat:*\tclosed" in out.getvalue()
