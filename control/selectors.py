"""Reads of the control tables, compiled for the rule set (partitions.selectors.ruleset_load)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone

from control import models
from control.access import BANNED, CLOSE_REASON_BYTES, AccessSnapshot, BanInfo, Closure, close_reason
from partitions.patterns import Pattern

MAX_ID_DIGITS = 18  # a row id (BigAutoField: below 2**63) has at most 19 digits; longer is no id here


def access_load() -> AccessSnapshot:
    """Only what can still matter: revoked tokens not yet expired, bans not yet over."""
    now = timezone.now()
    revoked = dict(
        models.IssuedToken.objects.filter(revoked_at__isnull=False, expires_at__gt=now).values_list("jti", "expires_at")
    )
    bans = list(models.Ban.objects.filter(Q(until__isnull=True) | Q(until__gt=now)))
    # When the snapshot next shrinks by itself (a ban ends, a revoked token expires): reloaded then.
    ends = [b.until.timestamp() for b in bans if b.until is not None] + [e.timestamp() for e in revoked.values()]
    room = CLOSE_REASON_BYTES - len(f"{BANNED}: ")  # the reason goes into the refusal's close frame
    return AccessSnapshot(
        revoked_jtis=frozenset(revoked),
        user_cutoffs={c.user: int(c.before.timestamp()) for c in models.UserTokenCutoff.objects.all()},
        bans={
            b.user: BanInfo(int(b.until.timestamp()) if b.until else None, close_reason(b.reason, room=room))
            for b in bans
        },
        next_end=min(ends, default=None),
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
        if len(number) > MAX_ID_DIGITS:  # no such id (and int() refuses over 4300 digits)
            return None
        return models.ChannelClosure.objects.filter(pk=int(number)).first()
    return models.ChannelClosure.objects.filter(pattern=text, enabled=True).first()


def closures_in_force() -> list[models.ChannelClosure]:
    return list(models.ChannelClosure.objects.filter(enabled=True))


@dataclass(frozen=True, slots=True)
class UserRow:
    """One user on the admin's Users page."""

    user: str
    login: str  # the Django username when the id is a Django user's primary key (session connects)
    ban: models.Ban | None  # in force now
    issued: int
    revoked: int
    known: bool  # False: seen nowhere here (issued elsewhere with the same key, or mistyped)


def users_overview(*, query: str = "", limit: int = 200) -> list[UserRow]:
    """Users known from issued tokens, bans and Django's users, whose id (or login) contains
    `query`; banned ones first. A query that names nobody known is listed itself, so an operator
    can still ban or disconnect an id seen only in Centrifugo."""
    now = timezone.now()
    tokens = models.IssuedToken.objects.filter(user__icontains=query) if query else models.IssuedToken.objects.all()
    bans = models.Ban.objects.filter(user__icontains=query) if query else models.Ban.objects.all()
    people = get_user_model().objects.all()
    if query:
        match = Q(username__icontains=query)
        if query.isdigit() and len(query) <= MAX_ID_DIGITS:
            match |= Q(pk=int(query))
        people = people.filter(match)
    logins = {str(pk): name for pk, name in people.order_by("pk").values_list("pk", "username")[:limit]}
    ids = set(tokens.order_by().values_list("user", flat=True).distinct()[:limit]) | set(logins)
    active = {b.user: b for b in bans if b.until is None or b.until > now}
    ids |= set(active)
    if query and query not in ids:
        ids.add(query)
    ordered = sorted(ids, key=lambda user: (user not in active, user))[:limit]
    counts: dict[str, dict[str, int]] = {
        row["user"]: {"issued": row["issued"], "revoked": row["revoked"]}
        for row in models.IssuedToken.objects.filter(user__in=ordered)
        .values("user")
        .annotate(issued=Count("id"), revoked=Count("id", filter=Q(revoked_at__isnull=False)))
    }
    known_bans = set(bans.values_list("user", flat=True))
    return [
        UserRow(
            user=user,
            login=logins.get(user, ""),
            ban=active.get(user),
            issued=counts.get(user, {}).get("issued", 0),
            revoked=counts.get(user, {}).get("revoked", 0),
            known=user in counts or user in logins or user in known_bans,
        )
        for user in ordered
    ]
