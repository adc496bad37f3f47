"""Writes to the control tables. Each one that changes a callback's decision bumps RuleSetVersion
in the same transaction (so every process reloads, as for a rule change) and is audited."""

from __future__ import annotations

import datetime
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from callbacks import tokens
from callbacks.server_api import CentrifugoUnavailable, centrifugo_call
from control import models, when
from control.access import BANNED, DISCONNECT_BANNED, close_reason
from partitions.services import ruleset_bump


def audit(*, actor: str, action: str, target: str, reason: str = "", **detail: Any) -> models.AuditEntry:
    """Record one operator action (call it inside the action's transaction)."""
    return models.AuditEntry.objects.create(actor=actor, action=action, target=target, reason=reason, detail=detail)


# --- the channel kill switch ---------------------------------------------------------------------


def closure_snapshot(closure: models.ChannelClosure) -> dict[str, Any]:
    return {
        "pattern": closure.pattern,
        "publish": closure.close_publish,
        "subscribe": closure.close_subscribe,
        "reason": closure.reason,
        "enabled": closure.enabled,
    }


# Every refused publish and subscribe answer carries the closure's reason ("channel closed: ..."):
# a pasted page of text would ride on each one.
MAX_CLOSURE_REASON = 1000


def check_closure(closure: models.ChannelClosure) -> None:
    """Refuse a closure that closes nothing, has no reason (clients are told it), has a pattern the
    rules would refuse, or duplicates one in force (one switch per pattern: edit that one)."""
    closure.reason = closure.reason.strip()
    errors: dict[str, str] = {}
    if not closure.reason:
        errors["reason"] = "Give a reason: refused clients get it in their error message, and it is audited."
    elif len(closure.reason) > MAX_CLOSURE_REASON:
        errors["reason"] = (
            f"A reason is at most {MAX_CLOSURE_REASON} characters (got {len(closure.reason)}): every refused "
            "publish and subscribe carries it."
        )
    if not (closure.close_publish or closure.close_subscribe):
        errors["close_publish"] = "A closure must close publish, subscribe or both (reopen it instead)."
    if closure.pk is None and not closure.enabled:
        errors["enabled"] = "A new closure is in force; untick it later to reopen the channels."
    if errors:
        raise ValidationError(errors)
    closure.full_clean(exclude=["actor"])  # the pattern, as channel rules' patterns are checked; actor: set on save
    if closure.enabled:
        twin = models.ChannelClosure.objects.filter(pattern=closure.pattern, enabled=True).exclude(pk=closure.pk)
        other = twin.first()
        if other is not None:
            raise ValidationError(
                {"pattern": f"'{closure.pattern}' is already closed (closure #{other.pk}): change that one."}
            )


@transaction.atomic
def closure_save(*, closure: models.ChannelClosure, actor: str, why: str = "") -> models.ChannelClosure:
    """Create or change a closure, audited as channel.closed (new, or enabled again),
    channel.reopened (disabled) or channel.changed, in the transaction that bumps the rule-set
    version: every callback process applies it within RULES_POLL_INTERVAL (this one at once).
    The audit's reason is `why`, else the closure's own reason."""
    closure.actor = actor
    check_closure(closure)
    previous = models.ChannelClosure.objects.select_for_update().filter(pk=closure.pk).first() if closure.pk else None
    before = closure_snapshot(previous) if previous is not None else None
    after = closure_snapshot(closure)
    if before == after:
        return closure
    if before is None or (closure.enabled and not before["enabled"]):
        action = "channel.closed"
    elif not closure.enabled and before["enabled"]:
        action = "channel.reopened"
    else:
        action = "channel.changed"
    closure.save()
    detail: dict[str, Any] = {
        "closure": closure.pk,
        "publish": closure.close_publish,
        "subscribe": closure.close_subscribe,
    }
    if before is not None:
        detail["before"] = before
    audit(actor=actor, action=action, target=closure.pattern, reason=why or closure.reason, **detail)
    ruleset_bump()
    return closure


def channel_close(
    *, pattern: str, actor: str, reason: str, subscribe: bool = False, publish: bool = True
) -> models.ChannelClosure:
    """Close the channels matching `pattern` for publish (and, with `subscribe`, for subscribe:
    live subscriptions end at their next sub_refresh). A closure of that pattern in force is
    changed instead (channel.changed)."""
    with transaction.atomic():
        closure = models.ChannelClosure.objects.filter(pattern=pattern, enabled=True).first()
        if closure is None:
            closure = models.ChannelClosure(pattern=pattern)
        closure.close_publish, closure.close_subscribe, closure.reason = publish, subscribe, reason
        return closure_save(closure=closure, actor=actor)


def channel_reopen(*, closure: models.ChannelClosure, actor: str, reason: str = "") -> models.ChannelClosure:
    """Lift a closure (kept, disabled, as history); `reason`: why, for the audit."""
    if not closure.enabled:
        return closure
    closure.enabled = False
    return closure_save(closure=closure, actor=actor, why=reason)


# --- Tokens -------------------------------------------------------------------------------


class TokenRevokeError(Exception):
    """A revocation that cannot be done (unknown jti, already revoked); the message says which."""


def _at(unix: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(unix, tz=datetime.UTC)


def _record(claims: dict[str, Any], *, kind: str, actor: str, proxy_only: bool = False) -> None:
    """The IssuedToken row and the audit entry of one token (never the token itself)."""
    user, jti, channel = claims["sub"], claims["jti"], claims.get("channel", "")
    ttl = claims["exp"] - claims["iat"]
    models.IssuedToken.objects.create(
        jti=jti, kind=kind, user=user, channel=channel, issued_at=_at(claims["iat"]), expires_at=_at(claims["exp"]),
        ttl=ttl, meta=claims.get("meta"), issued_by=actor,
    )  # fmt: skip
    extra: dict[str, Any] = {"proxy_only": True} if proxy_only else {}
    audit(actor=actor, action="token.issued", target=jti, user=user, kind=kind, channel=channel, ttl=ttl, **extra)


def connection_token_issue(
    *,
    user: str,
    ttl: int,
    actor: str,
    info: Any = None,
    meta: dict[str, Any] | None = None,
    proxy_only: bool = False,
) -> str:
    """A connection token, recorded (control.IssuedToken) and audited. ValueError: a reserved meta key.
    `proxy_only`: usable only in the connect data (callbacks.tokens)."""
    claims = tokens.connection_token_claims(user=user, ttl=ttl, info=info, meta=meta)
    with transaction.atomic():
        _record(claims, kind=models.IssuedToken.KIND_CONNECTION, actor=actor, proxy_only=proxy_only)
    return tokens.token_encode(claims, proxy_only=proxy_only)


def subscription_token_issue(
    *, user: str, channel: str, ttl: int, actor: str, override: dict[str, Any] | None = None
) -> str:
    claims = tokens.subscription_token_claims(user=user, channel=channel, ttl=ttl, override=override)
    with transaction.atomic():
        _record(claims, kind=models.IssuedToken.KIND_SUBSCRIPTION, actor=actor)
    return tokens.token_encode(claims)


def token_revoke(*, jti: str, actor: str, reason: str = "") -> models.IssuedToken:
    """Revoke one recorded token: in force on every callback process within RULES_POLL_INTERVAL."""
    with transaction.atomic():
        token = models.IssuedToken.objects.select_for_update().filter(jti=jti).first()
        if token is None:
            raise TokenRevokeError(f"no token with jti {jti!r} was issued here (manage.py issue_*_token records them)")
        if token.revoked_at is not None:
            raise TokenRevokeError(
                f"token {jti} was already revoked at {token.revoked_at:%Y-%m-%dT%H:%M:%SZ} by {token.revoked_by}"
            )
        token.revoked_at, token.revoked_by, token.revoke_reason = timezone.now(), actor, reason
        token.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        ruleset_bump()
        audit(actor=actor, action="token.revoked", target=jti, reason=reason, user=token.user, kind=token.kind,
              channel=token.channel)  # fmt: skip
    return token


def tokens_revoke(
    *, user: str, actor: str, before: datetime.datetime | None = None, reason: str = ""
) -> tuple[datetime.datetime, int]:
    """Revoke every token of `user` issued before `before` (default: now), recorded here or not:
    a cutoff on the tokens' iat. iat is whole seconds, so the cutoff is rounded UP to the whole
    second: every token issued up to the call is covered (one issued later in that same second
    too: its holder retries a second later). Returns the cutoff and how many recorded tokens it
    marked revoked. A cutoff in the future is refused (TokenRevokeError): that is a ban."""
    if (problem := user_id_problem(user)) is not None:
        raise TokenRevokeError(problem)
    now = timezone.now()
    try:
        before = when.in_range(before) if before is not None else now
    except ValueError as exc:
        raise TokenRevokeError(f"--before: {exc}") from None
    if before > now + datetime.timedelta(seconds=1):
        raise TokenRevokeError(f"--before {before.isoformat()} is in the future: to refuse new connects, ban the user")
    if before.microsecond:
        before = before.replace(microsecond=0) + datetime.timedelta(seconds=1)
    with transaction.atomic():
        models.UserTokenCutoff.objects.update_or_create(
            user=user, defaults={"before": before, "actor": actor, "reason": reason}
        )
        marked = models.IssuedToken.objects.filter(user=user, issued_at__lt=before, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=actor, revoke_reason=reason
        )
        ruleset_bump()
        audit(actor=actor, action="tokens.revoked", target=user, reason=reason, before=before.isoformat(),
              recorded_tokens_marked=marked)  # fmt: skip
    return before, marked


# Centrifugo disconnect code after revoke_tokens: 4000-4499 tell the SDK to reconnect, so the
# user's connections whose tokens are still valid come back; the revoked ones are refused then.
DISCONNECT_RECONNECT_TOKENS_REVOKED = 4104


def user_connections_drop(*, user: str, code: int, reason: str) -> str | None:
    """Centrifugo's server API `disconnect` for every connection of `user`, on every node (the
    Redis engine carries it). None when done, else why it failed (the caller's action stands)."""
    return _centrifugo("disconnect", {"user": user, "disconnect": {"code": code, "reason": close_reason(reason)}})


def subscriptions_end(*, user: str, channel: str) -> str | None:
    """Centrifugo's server API `unsubscribe` of `user` from `channel`, on every node."""
    return _centrifugo("unsubscribe", {"user": user, "channel": channel})


def _centrifugo(method: str, body: dict[str, Any]) -> str | None:
    try:
        answer = centrifugo_call(method, body)
    except CentrifugoUnavailable as exc:
        return f"Centrifugo at {settings.CENTRIFUGO_API_URL} did not answer ({exc})"
    if "error" in answer:
        return f"Centrifugo at {settings.CENTRIFUGO_API_URL} answered {answer['error']}"
    return None


# --- Users: disconnect and ban ----------------------------------------------------------

# A plain disconnect: 4000-4499 tell the SDK to reconnect (a ban's 4505 tells it not to).
DISCONNECT_BY_OPERATOR = 4005


class DisconnectFailed(Exception):
    """Centrifugo did not confirm the disconnect (down, unreachable, or it answered an error)."""


# The longest user id the control tables hold (Ban.user, UserTokenCutoff.user, AuditEntry.target).
MAX_USER_ID = 255


def user_id_problem(user: str) -> str | None:
    """Why `user` cannot be a user id acted on here, or None. Checked before any write, so that a
    hostile or mistyped id gets this message, not the database's error half-way through."""
    # Centrifugo's anonymous connections all have the user "": disconnecting "" would drop them all.
    if not user or user != user.strip():
        return f"a user id must be non-empty, without surrounding spaces: {user[:80]!r}"
    if len(user) > MAX_USER_ID:
        return f"a user id is at most {MAX_USER_ID} characters, got {len(user)}"
    if "\x00" in user:
        return "a user id cannot contain NUL characters"
    return None


def _check_user(user: str) -> None:
    if (problem := user_id_problem(user)) is not None:
        raise ValueError(problem)


def user_disconnect(*, user: str, actor: str, reason: str = "", code: int = DISCONNECT_BY_OPERATOR) -> None:
    """Close every connection of `user` on every node now. With the default code the SDK reconnects
    (and its connect is checked again); audited whether or not Centrifugo confirmed it. Raises
    DisconnectFailed when it did not."""
    _check_user(user)
    error = user_connections_drop(user=user, code=code, reason=f"disconnected: {reason}" if reason else "disconnected")
    audit(actor=actor, action="user.disconnected", target=user, reason=reason, code=code, error=error)
    if error is not None:
        raise DisconnectFailed(error)


def user_ban(*, user: str, actor: str, reason: str = "", until: datetime.datetime | None = None) -> models.Ban:
    """Refuse `user` from now until `until` (None: until unbanned), and close their connections.

    The ban is committed first and is in force whatever Centrifugo does: every process reloads it
    within RULES_POLL_INTERVAL and refuses the user's connects and commands from then on. The
    connections are closed twice: at once, and again once every process has the ban, so that one
    opened in between (a client reconnecting against a process that had not reloaded yet) goes too.
    Raises DisconnectFailed (after the ban is in force) when Centrifugo did not confirm a disconnect.
    Banning a banned user again replaces the reason and the end."""
    _check_user(user)
    until = when.in_range(until) if until is not None else None
    if until is not None and until <= timezone.now():
        raise ValueError(f"the ban would end before it starts ({until.isoformat()})")
    with transaction.atomic():
        ban, created = models.Ban.objects.update_or_create(
            user=user, defaults={"reason": reason, "until": until, "actor": actor}
        )
        ruleset_bump()
        audit(actor=actor, action="user.banned", target=user, reason=reason,
              until=until.isoformat() if until else None, renewed=not created)  # fmt: skip
    close = f"{BANNED}: {reason}" if reason else BANNED
    error = user_connections_drop(user=user, code=DISCONNECT_BANNED, reason=close)
    if error is None:
        time.sleep(2 * settings.RULES_POLL_INTERVAL)
        error = user_connections_drop(user=user, code=DISCONNECT_BANNED, reason=close)
    audit(actor=actor, action="user.disconnected", target=user, reason=reason, code=DISCONNECT_BANNED, error=error)
    if error is not None:
        raise DisconnectFailed(error)
    return ban


def user_unban(*, user: str, actor: str, reason: str = "") -> bool:
    """End `user`'s ban now (False: there was none, nothing changed). Their next connect is allowed."""
    with transaction.atomic():
        ban = models.Ban.objects.select_for_update().filter(user=user).first()
        if ban is None:
            return False
        ban.delete()
        ruleset_bump()
        audit(actor=actor, action="user.unbanned", target=user, reason=reason,
              banned_by=ban.actor, ban_reason=ban.reason)  # fmt: skip
    return True
