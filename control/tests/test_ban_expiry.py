"""A ban's end ends it without anyone acting (issue 13, item 2): the refusal stops at `until`,
and every process reloads its snapshot then, so the callbacks are back to one truth test."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.utils import timezone

from control import models
from control.selectors import access_load
from partitions.selectors import ruleset_version
from partitions.store import RulesStore

committed = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.mark.django_db
def test_issue13_item2_snapshot_knows_when_its_first_ban_ends() -> None:
    assert access_load().next_end is None
    soon, later = timezone.now() + dt.timedelta(minutes=5), timezone.now() + dt.timedelta(hours=5)
    models.Ban.objects.create(user="a", actor="t", until=later)
    models.Ban.objects.create(user="b", actor="t", until=soon)
    models.Ban.objects.create(user="c", actor="t")  # until unbanned
    assert access_load().next_end == soon.timestamp()


@committed
def test_issue13_item2_an_ended_ban_leaves_every_process_without_a_version_bump(settings: Any) -> None:
    settings.RULES_WATCH = True
    settings.RULES_POLL_INTERVAL = 0.05
    until = timezone.now() + dt.timedelta(seconds=1)
    models.Ban.objects.create(user="eve", actor="test", until=until)
    store = RulesStore()
    try:
        loaded = store.current()
        assert "eve" in loaded.access.bans
        assert loaded.access
        version = ruleset_version()
        deadline = time.monotonic() + 10
        while store.current().access and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not store.current().access, "the ended ban is still in the snapshot"
        assert timezone.now() >= until
        assert ruleset_version() == version == store.current().version
    finally:
        store.stop()


@pytest.mark.django_db
def test_issue13_item2_snapshot_also_shrinks_when_a_revoked_token_expires() -> None:
    now = timezone.now()
    expires = now + dt.timedelta(minutes=1)
    models.IssuedToken.objects.create(
        jti="j1", kind="connection", user="a", issued_at=now, expires_at=expires, ttl=60, issued_by="t", revoked_at=now
    )
    models.Ban.objects.create(user="b", actor="t", until=now + dt.timedelta(hours=1))
    snapshot = access_load()
    assert snapshot.revoked_jtis == {"j1"}
    assert snapshot.next_end == expires.timestamp()
