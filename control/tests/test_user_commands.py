"""manage.py disconnect / ban / unban (issue 13, item 2): what they do, and their errors."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from control import models
from control.tests.conftest import FakeCentrifugo

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_issue13_item2_disconnect_command(centrifugo: FakeCentrifugo) -> None:
    assert "disconnected every connection of 'alice'" in run("disconnect", "alice", "--reason", "test")
    assert centrifugo.calls[0][1]["user"] == "alice"
    assert models.AuditEntry.objects.get().actor.startswith("command:disconnect")


def test_issue13_item2_disconnect_command_fails_when_centrifugo_is_down(centrifugo_down: str) -> None:
    # CommandError: manage.py prints it and exits with status 1
    with pytest.raises(CommandError, match=r"'alice' was NOT disconnected: Centrifugo at .* did not answer"):
        run("disconnect", "alice")


def test_issue13_item2_ban_command_for_a_duration(centrifugo: FakeCentrifugo) -> None:
    before = timezone.now()
    assert "banned 'eve' until " in run("ban", "eve", "--for", "2h", "--reason", "spam")
    ban = models.Ban.objects.get(user="eve")
    assert ban.until is not None
    assert dt.timedelta(hours=2) <= ban.until - before < dt.timedelta(hours=2, seconds=30)
    assert (ban.reason, ban.actor.split()[0]) == ("spam", "command:ban")


def test_issue13_item2_ban_command_until_a_time(centrifugo: FakeCentrifugo) -> None:
    run("ban", "eve", "--until", "2999-01-02T03:04:05")  # no offset: UTC
    assert models.Ban.objects.get().until == dt.datetime(2999, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    run("ban", "eve", "--until", "32503680000")  # unix seconds: 3000-01-01
    assert models.Ban.objects.get().until == dt.datetime(3000, 1, 1, tzinfo=dt.UTC)
    assert "until unbanned" in run("ban", "eve")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--for", "2x"], "argument --for: expected a duration such as 90s, 15m, 2h, 7d or 1w, got '2x'"),
        (["--for", "0m"], "a duration must be between 1 s and 10 years"),
        (["--until", "tomorrow"], "argument --until: expected a time as ISO 8601"),
        (["--until", "2000-01-01"], "the ban would end before it starts"),
        (["--for", "1h", "--until", "2999-01-01"], "not allowed with argument"),
    ],
)
def test_issue13_item2_ban_command_errors(centrifugo: FakeCentrifugo, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("ban", "eve", *args)
    assert not models.Ban.objects.exists()


def test_issue13_item2_ban_command_with_centrifugo_down_says_the_ban_is_in_force(centrifugo_down: str) -> None:
    with pytest.raises(CommandError, match=r"'eve' IS banned .* not closed at once: Centrifugo at .* did not answer"):
        run("ban", "eve")
    assert models.Ban.objects.filter(user="eve").exists()


def test_issue13_item2_unban_command(centrifugo: FakeCentrifugo) -> None:
    run("ban", "eve")
    assert run("unban", "eve", "--reason", "appeal").strip() == "unbanned 'eve'"
    assert not models.Ban.objects.exists()
    with pytest.raises(CommandError, match="'eve' is not banned: nothing changed"):
        run("unban", "eve")
