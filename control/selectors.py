"""Reads of the control tables, compiled for the rule set (partitions.selectors.ruleset_load)."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from control import models
from control.access import AccessSnapshot, BanInfo, Closure
from partitions.patterns import Pattern


def access_load() -> AccessSnapshot:
    """Only what can still matter: revoked tokens not yet expired, bans not yet over."""
    now = timezone.now()
    revoked = models.IssuedToken.objects.filter(revoked_at__isnull=False, expires_at__gt=now)
    bans = models.Ban.objects.filter(Q(until__isnull=True) | Q(until__gt=now))
    return AccessSnapshot(
        revoked_jtis=frozenset(revoked.values_list("jti", flat=True)),
        user_cutoffs={c.user: int(c.before.timestamp()) for c in models.UserTokenCutoff.objects.all()},
        bans={b.user: BanInfo(int(b.until.timestamp()) if b.until else None, b.reason) for b in bans},
    )


def closures_load() -> list[Closure]:
    return [
        Closure(
            id=c.pk,
            pattern=Pattern.parse(c.pattern),
            publish=c.close_publish,
            subscribe=c.close_subscribe,
            reason=c.reason,
        )
        for c in models.ChannelClosure.objects.filter(enabled=True)
    ]


def closure_find(ref: str) -> models.ChannelClosure | None:
    """A closure named as operators name one: `#12` or `12` (its id, in force or not), or a
    pattern (the closure of exactly that pattern in force)."""
    text = ref.strip()
    number = text.removeprefix("#")
    if number.isdigit():
        return models.ChannelClosure.objects.filter(pk=int(number)).first()
    return models.ChannelClosure.objects.filter(pattern=text, enabled=True).first()


def closures_in_force() -> list[models.ChannelClosure]:
    return list(models.ChannelClosure.objects.filter(enabled=True))
