"""Reads of the rule tables, compiled into the in-memory rule set."""

from __future__ import annotations

from django.conf import settings

from partitions import models
from partitions.patterns import Pattern
from partitions.rules import (
    Access,
    ChannelRule,
    Defaults,
    PartitionKey,
    PartitionRule,
    Permission,
    RuleSet,
    build,
    split_ids,
)


def ruleset_version() -> int:
    row = models.RuleSetVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    return int(row or 0)


def compile_channel_rule(row: models.ChannelRule) -> ChannelRule:
    return ChannelRule(
        id=row.pk or 0,
        pattern=Pattern.parse(row.pattern),
        priority=row.priority,
        subscribe=Permission(
            Access(row.subscribe_access), split_ids(row.subscribe_users), split_ids(row.subscribe_roles)
        ),
        publish=Permission(Access(row.publish_access), split_ids(row.publish_users), split_ids(row.publish_roles)),
        max_payload_bytes=row.max_payload_bytes,
    )


def compile_partition_rule(row: models.PartitionRule) -> PartitionRule:
    return PartitionRule(
        id=row.pk or 0,
        pattern=Pattern.parse(row.pattern),
        priority=row.priority,
        stream=row.stream,
        partitions=max(1, row.partitions),
        key=PartitionKey(row.key),
        max_length=row.max_length,
        store=row.store,
    )


def default_partitioning() -> Defaults:
    return Defaults(
        stream="default",
        partitions=settings.STREAM_DEFAULT_PARTITIONS,
        max_length=settings.STREAM_DEFAULT_MAXLEN or None,
    )


def ruleset_load() -> RuleSet:
    """The enabled rules, compiled. Reads the version first so a concurrent change is never missed:
    at worst the set is newer than its version and the next poll reloads it once more."""
    version = ruleset_version()
    channel_rules = [compile_channel_rule(r) for r in models.ChannelRule.objects.filter(enabled=True)]
    partition_rules = [compile_partition_rule(r) for r in models.PartitionRule.objects.filter(enabled=True)]
    return build(version, channel_rules, partition_rules, default_partitioning())
