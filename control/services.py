"""Writes to the control tables. Each one that changes a callback's decision bumps RuleSetVersion
in the same transaction (so every process reloads, as for a rule change) and is audited."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from control import models
from control.access import BANNED, DISCONNECT_BANNED, close_reason

# A plain disconnect: 4000-4499 tell the SDK to reconnect (a ban's 4505 tells it not to).
DISCONNECT_BY_OPERATOR = 4005


class DisconnectFailed(Exception):
    """Centrifugo did not confirm the disconnect (down, unreachable, or it answered an error)."""


def audit(*, actor: str, action: str, target: str, reason: str = "", **detail: Any) -> models.AuditEntry:
    """Record one operator action (call it inside the action's transaction)."""
    return models.AuditEntry.objects.create(actor=actor, action=action, target=target, reason=reason, detail=detail)


def _centrifugo_disconnect(user: str, code: int, reason: str) -> str | None:
    """Centrifugo's server API `disconnect` of every connection of `user`: the node that gets it
    passes it to every other one through the Redis engine. None, or why it failed."""
    from callbacks.server_api import CentrifugoUnavailable, centrifugo_call

    body = {"user": user, "disconnect": {"code": code, "reason": close_reason(reason)}}
    try:
        answer = centrifugo_call("disconnect", body)
    except CentrifugoUnavailable as exc:
        return f"Centrifugo at {settings.CENTRIFUGO_API_URL} did not answer ({exc})"
    if "error" in answer:
        return f"Centrifugo at {settings.CENTRIFUGO_API_URL} answered {answer['error']}"
    return None


def _check_user(user: str) -> None:
    # Centrifugo's anonymous connections all have the user "": disconnecting "" would drop them all.
    if not user or user != user.strip():
        raise ValueError(f"a user id must be non-empty, without surrounding spaces: {user!r}")


def user_disconnect(*, user: str, actor: str, reason: str = "", code: int = DISCONNECT_BY_OPERATOR) -> None:
    """Close every connection of `user` on every node now. With the default code the SDK reconnects
    (and its connect is checked again); audited whether or not Centrifugo confirmed it. Raises
    DisconnectFailed when it did not."""
    _check_user(user)
    error = _centrifugo_disconnect(user, code, f"disconnected: {reason}" if reason else "disconnected")
    audit(actor=actor, action="user.disconnected", target=user, reason=reason, code=code, error=error)
    if error is not None:
        raise DisconnectFailed(error)


def user_ban(*, user: str, actor: str, reason: str = "", until: dt.datetime | None = None) -> models.Ban:
    """Refuse `user` from now until `until` (None: until unbanned), and close their connections.

    The ban is committed first and is in force whatever Centrifugo does: every process reloads it
    within RULES_POLL_INTERVAL and refuses the user's connects and commands from then on. The
    connections are closed twice: at once, and again once every process has the ban, so that one
    opened in between (a client reconnecting against a process that had not reloaded yet) goes too.
    Raises DisconnectFailed (after the ban is in force) when Centrifugo did not confirm a disconnect.
    Banning a banned user again replaces the reason and the end."""
    _check_user(user)
    if until is not None and until <= timezone.now():
        raise ValueError(f"the ban would end before it starts ({until.isoformat()})")
    from partitions.services import ruleset_bump

    with transaction.atomic():
        ban, created = models.Ban.objects.update_or_create(
            user=user, defaults={"reason": reason, "until": until, "actor": actor}
        )
        ruleset_bump()
        audit(actor=actor, action="user.banned", target=user, reason=reason,
              until=until.isoformat() if until else None, renewed=not created)  # fmt: skip
    close = f"{BANNED}: {reason}" if reason else BANNED
    error = _centrifugo_disconnect(user, DISCONNECT_BANNED, close)
    if error is None:
        time.sleep(2 * settings.RULES_POLL_INTERVAL)
        error = _centrifugo_disconnect(user, DISCONNECT_BANNED, close)
    audit(actor=actor, action="user.disconnected", target=user, reason=reason, code=DISCONNECT_BANNED, error=error)
    if error is not None:
        raise DisconnectFailed(error)
    return ban


def user_unban(*, user: str, actor: str, reason: str = "") -> bool:
    """End `user`'s ban now (False: there was none, nothing changed). Their next connect is allowed."""
    from partitions.services import ruleset_bump

    with transaction.atomic():
        ban = models.Ban.objects.select_for_update().filter(user=user).first()
        if ban is None:
            return False
        ban.delete()
        ruleset_bump()
        audit(actor=actor, action="user.unbanned", target=user, reason=reason,
              banned_by=ban.actor, ban_reason=ban.reason)  # fmt: skip
    return True
