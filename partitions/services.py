"""Writes to the rule tables. Every change is validated like the admin validates it, recorded in
the audit trail, and bumps RuleSetVersion in the same transaction — which is how every callback
process, on every replica, learns to reload."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.forms.models import model_to_dict

from partitions import models
from realtime.redis import REDIS_ERRORS, get_redis
from streams.writer import stream_key

Rule = models.ChannelRule | models.PartitionRule
AUDITED_EXCLUDE = ("id", "created_at", "updated_at")


def ruleset_bump() -> None:
    """Call inside the transaction that changed a rule."""
    updated = models.RuleSetVersion.objects.filter(pk=1).update(version=F("version") + 1)
    if not updated:
        models.RuleSetVersion.objects.get_or_create(pk=1, defaults={"version": 1})
    # This process need not wait for its own poll.
    from partitions.store import rules_store

    transaction.on_commit(rules_store.invalidate)


def rule_snapshot(rule: Rule) -> dict[str, Any]:
    return {k: v for k, v in model_to_dict(rule).items() if k not in AUDITED_EXCLUDE}


def _kind(rule: Rule) -> str:
    return "channel" if isinstance(rule, models.ChannelRule) else "partition"


def _audit(*, actor: str, action: str, rule: Rule, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    models.RuleChange.objects.create(
        actor=actor, action=action, kind=_kind(rule), pattern=rule.pattern, before=before, after=after
    )


def check_partition_shrink(*, rule: models.PartitionRule) -> None:
    """Refuse to lower a stream's partition count while the partitions it drops hold entries.

    With fewer partitions, channels that hashed to the dropped ones move to others: per-channel
    order between old and new entries is lost, and readers of the dropped partitions stop seeing
    new messages. Only an operator who has drained or trimmed them should do that."""
    if not rule.pk:
        return
    old = models.PartitionRule.objects.filter(pk=rule.pk).values("stream", "partitions").first()
    if old is None or old["stream"] != rule.stream or rule.partitions >= old["partitions"]:
        return
    dropped = range(rule.partitions, old["partitions"])
    try:
        pipe = get_redis().pipeline(transaction=False)
        for partition in dropped:
            pipe.xlen(stream_key(rule.stream, partition))
        lengths = pipe.execute()
    except REDIS_ERRORS as exc:
        raise ValidationError(
            {
                "partitions": f"Cannot check partitions {dropped.start}-{dropped.stop - 1} of stream '{rule.stream}' "
                f"for data (Redis: {exc}); try again when Redis answers."
            }
        ) from exc
    stored = sum(int(n) for n in lengths)
    if stored:
        raise ValidationError(
            {
                "partitions": f"Stream '{rule.stream}' has {stored} entries in partitions {dropped.start}-{dropped.stop - 1}. "
                f"With {rule.partitions} partitions, their channels would move to other partitions: per-channel order "
                "between old and new entries is lost and consumers of the dropped partitions see no new messages. "
                "Drain or trim those partitions first, or use a new stream name."
            }
        )


@transaction.atomic
def rule_save(*, rule: Rule, actor: str) -> Rule:
    """Create or update a channel or partition rule."""
    rule.full_clean()
    if isinstance(rule, models.PartitionRule):
        check_partition_shrink(rule=rule)
    before = None
    if rule.pk:
        previous = type(rule).objects.filter(pk=rule.pk).first()
        before = rule_snapshot(previous) if previous else None
    rule.save()
    after = rule_snapshot(rule)
    if before != after:
        _audit(actor=actor, action="changed" if before else "created", rule=rule, before=before, after=after)
        ruleset_bump()
    return rule


@transaction.atomic
def rule_delete(*, rule: Rule, actor: str) -> None:
    before = rule_snapshot(rule)
    rule.delete()
    _audit(actor=actor, action="deleted", rule=rule, before=before, after=None)
    ruleset_bump()
