"""Writes to the rule tables. Every change bumps RuleSetVersion in the same transaction, which is
how every callback process (on every replica) learns to reload."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from partitions import models


def ruleset_bump() -> None:
    """Call inside the transaction that changed a rule."""
    updated = models.RuleSetVersion.objects.filter(pk=1).update(version=F("version") + 1)
    if not updated:
        models.RuleSetVersion.objects.get_or_create(pk=1, defaults={"version": 1})
    # This process need not wait for its own poll.
    from partitions.store import rules_store

    transaction.on_commit(rules_store.invalidate)


@transaction.atomic
def channel_rule_save(*, rule: models.ChannelRule) -> models.ChannelRule:
    rule.full_clean()
    rule.save()
    ruleset_bump()
    return rule


@transaction.atomic
def partition_rule_save(*, rule: models.PartitionRule) -> models.PartitionRule:
    rule.full_clean()
    rule.save()
    ruleset_bump()
    return rule


@transaction.atomic
def rule_delete(*, rule: models.ChannelRule | models.PartitionRule) -> None:
    rule.delete()
    ruleset_bump()
