"""Writes to the control tables. Each one that changes a callback's decision bumps RuleSetVersion
in the same transaction (so every process reloads, as for a rule change) and is audited."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from callbacks import tokens
from callbacks.server_api import CentrifugoUnavailable, centrifugo_call
from control import models
from partitions.services import ruleset_bump


def audit(*, actor: str, action: str, target: str, reason: str = "", **detail: Any) -> models.AuditEntry:
    """Record one operator action (call it inside the action's transaction)."""
    return models.AuditEntry.objects.create(actor=actor, action=action, target=target, reason=reason, detail=detail)


# --- Tokens -------------------------------------------------------------------------------


class TokenRevokeError(Exception):
    """A revocation that cannot be done (unknown jti, already revoked); the message says which."""


def _at(unix: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(unix, tz=datetime.UTC)


def _record(claims: dict[str, Any], *, kind: str, actor: str) -> None:
    """The IssuedToken row and the audit entry of one token (never the token itself)."""
    user, jti, channel = claims["sub"], claims["jti"], claims.get("channel", "")
    ttl = claims["exp"] - claims["iat"]
    models.IssuedToken.objects.create(
        jti=jti, kind=kind, user=user, channel=channel, issued_at=_at(claims["iat"]), expires_at=_at(claims["exp"]),
        ttl=ttl, meta=claims.get("meta"), issued_by=actor,
    )  # fmt: skip
    audit(actor=actor, action="token.issued", target=jti, user=user, kind=kind, channel=channel, ttl=ttl)


def connection_token_issue(
    *, user: str, ttl: int, actor: str, info: Any = None, meta: dict[str, Any] | None = None
) -> str:
    """A connection token, recorded (control.IssuedToken) and audited. ValueError: a reserved meta key."""
    claims = tokens.connection_token_claims(user=user, ttl=ttl, info=info, meta=meta)
    with transaction.atomic():
        _record(claims, kind=models.IssuedToken.KIND_CONNECTION, actor=actor)
    return tokens.token_encode(claims)


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
    now = timezone.now()
    before = before or now
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
    return _centrifugo("disconnect", {"user": user, "disconnect": {"code": code, "reason": reason}})


def subscriptions_end(*, user: str, channel: str) -> str | None:
    """Centrifugo's server API `unsubscribe` of `user` from `channel`, on every node."""
    return _centrifugo("unsubscribe", {"user": user, "channel": channel})


def _centrifugo(method: str, body: dict[str, Any]) -> str | None:
    try:
        answer = centrifugo_call(method, body)
    except CentrifugoUnavailable as exc:
        return str(exc)
    if "error" in answer:
        return f"Centrifugo answered {answer['error']}"
    return None
