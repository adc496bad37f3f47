"""control.services: disconnect, ban and unban (issue 13, item 2) and their audit (item 5)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from control import models, services
from control.access import DISCONNECT_BANNED
from control.selectors import access_load
from control.tests.conftest import FakeCentrifugo
from partitions.selectors import ruleset_version

pytestmark = pytest.mark.django_db


def test_issue13_item2_disconnect_asks_centrifugo_for_every_connection_of_the_user(centrifugo: FakeCentrifugo) -> None:
    services.user_disconnect(user="alice", actor="ops", reason="stuck client")
    assert centrifugo.calls == [
        ("disconnect", {"user": "alice", "disconnect": {"code": 4005, "reason": "disconnected: stuck client"}})
    ]
    entry = models.AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.target, entry.reason) == (
        "ops",
        "user.disconnected",
        "alice",
        "stuck client",
    )
    assert entry.detail == {"code": 4005, "error": None}


def test_issue13_item2_disconnect_refuses_the_anonymous_user(centrifugo: FakeCentrifugo) -> None:
    # Every anonymous connection has the user "": that would drop them all.
    with pytest.raises(ValueError, match="non-empty"):
        services.user_disconnect(user="", actor="ops")
    assert centrifugo.calls == []


def test_issue13_item2_disconnect_with_centrifugo_down_fails_clearly_and_is_audited(centrifugo_down: str) -> None:
    with pytest.raises(services.DisconnectFailed, match=f"Centrifugo at {centrifugo_down} did not answer"):
        services.user_disconnect(user="alice", actor="ops")
    assert models.AuditEntry.objects.get().detail["error"].startswith(f"Centrifugo at {centrifugo_down}")


def test_issue13_item2_disconnect_reports_centrifugos_error(centrifugo: FakeCentrifugo) -> None:
    centrifugo.answer = {"error": {"code": 100, "message": "internal server error"}}
    with pytest.raises(services.DisconnectFailed, match="internal server error"):
        services.user_disconnect(user="alice", actor="ops")


def test_issue13_item2_ban_is_in_force_bumps_the_version_and_disconnects_twice(centrifugo: FakeCentrifugo) -> None:
    version = ruleset_version()
    until = timezone.now() + dt.timedelta(hours=1)
    services.user_ban(user="eve", actor="ops", reason="spam", until=until)
    assert ruleset_version() == version + 1
    refusal = access_load().refusal(user="eve", jti=None, iat=None, now=timezone.now().timestamp())
    assert refusal is not None
    assert (refusal.code, refusal.reason) == (DISCONNECT_BANNED, "banned: spam")
    close = {"code": DISCONNECT_BANNED, "reason": "banned: spam"}
    assert centrifugo.calls == [("disconnect", {"user": "eve", "disconnect": close})] * 2
    banned, disconnected = models.AuditEntry.objects.order_by("id")
    assert (banned.action, banned.target, banned.reason, banned.actor) == ("user.banned", "eve", "spam", "ops")
    assert banned.detail == {"until": until.isoformat(), "renewed": False}
    assert (disconnected.action, disconnected.detail) == ("user.disconnected", {"code": 4505, "error": None})


def test_issue13_item2_ban_again_replaces_reason_and_end(centrifugo: FakeCentrifugo) -> None:
    services.user_ban(user="eve", actor="ops", reason="spam", until=timezone.now() + dt.timedelta(hours=1))
    services.user_ban(user="eve", actor="lead", reason="worse")
    ban = models.Ban.objects.get(user="eve")
    assert (ban.reason, ban.until, ban.actor) == ("worse", None, "lead")
    assert models.AuditEntry.objects.filter(action="user.banned").first().detail["renewed"] is True  # type: ignore[union-attr]


def test_issue13_item2_ban_with_centrifugo_down_is_still_in_force(centrifugo_down: str) -> None:
    with pytest.raises(services.DisconnectFailed, match="did not answer"):
        services.user_ban(user="eve", actor="ops")
    assert models.Ban.objects.filter(user="eve").exists()
    assert access_load().refusal(user="eve", jti=None, iat=None, now=timezone.now().timestamp()) is not None


def test_issue13_item2_ban_refuses_an_end_in_the_past(centrifugo: FakeCentrifugo) -> None:
    with pytest.raises(ValueError, match="end before it starts"):
        services.user_ban(user="eve", actor="ops", until=timezone.now() - dt.timedelta(seconds=1))
    assert not models.Ban.objects.exists()
    assert centrifugo.calls == []


def test_issue13_item2_a_long_ban_reason_fits_a_websocket_close_frame(centrifugo: FakeCentrifugo) -> None:
    """A close frame carries 123 bytes of reason; with more Centrifugo sends none and the client
    reconnects whatever the code."""
    services.user_ban(user="eve", actor="ops", reason="é" * 200)
    sent = centrifugo.calls[0][1]["disconnect"]["reason"]
    assert sent.startswith("banned: é")
    assert len(sent.encode()) <= 123
    refusal = access_load().refusal(user="eve", jti=None, iat=None, now=timezone.now().timestamp())
    assert refusal is not None
    assert refusal.reason.startswith("banned: é")
    assert len(refusal.reason.encode()) <= 123
    assert models.Ban.objects.get().reason == "é" * 200  # kept whole for the operators


def test_issue13_item2_unban_ends_the_ban_and_bumps_the_version(centrifugo: FakeCentrifugo) -> None:
    services.user_ban(user="eve", actor="ops", reason="spam")
    version = ruleset_version()
    assert services.user_unban(user="eve", actor="lead", reason="appeal") is True
    assert ruleset_version() == version + 1
    assert access_load().refusal(user="eve", jti=None, iat=None, now=timezone.now().timestamp()) is None
    entry = models.AuditEntry.objects.first()
    assert entry is not None
    assert (entry.action, entry.actor, entry.reason) == ("user.unbanned", "lead", "appeal")
    assert entry.detail == {"banned_by": "ops", "ban_reason": "spam"}


def test_issue13_item2_unban_of_someone_not_banned_changes_nothing() -> None:
    version = ruleset_version()
    assert services.user_unban(user="nobody", actor="ops") is False
    assert ruleset_version() == version
    assert not models.AuditEntry.objects.exists()
