"""Writes to the control tables. Each one that changes a callback's decision bumps RuleSetVersion
in the same transaction (so every process reloads, as for a rule change) and is audited."""

from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from control import models
from partitions.services import ruleset_bump


def audit(*, actor: str, action: str, target: str, reason: str = "", **detail: Any) -> models.AuditEntry:
    """Record one operator action (call it inside the action's transaction)."""
    return models.AuditEntry.objects.create(actor=actor, action=action, target=target, reason=reason, detail=detail)


def command_actor(command: str) -> str:
    """The actor of a management command: `command:<name>`, with the shell user when known."""
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or ""
    return f"command:{command} ({user})" if user else f"command:{command}"


# --- the channel kill switch ---------------------------------------------------------------------


def closure_snapshot(closure: models.ChannelClosure) -> dict[str, Any]:
    return {
        "pattern": closure.pattern,
        "publish": closure.close_publish,
        "subscribe": closure.close_subscribe,
        "reason": closure.reason,
        "enabled": closure.enabled,
    }


def check_closure(closure: models.ChannelClosure) -> None:
    """Refuse a closure that closes nothing, has no reason (clients are told it), has a pattern the
    rules would refuse, or duplicates one in force (one switch per pattern: edit that one)."""
    closure.reason = closure.reason.strip()
    errors: dict[str, str] = {}
    if not closure.reason:
        errors["reason"] = "Give a reason: refused clients get it in their error message, and it is audited."
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
