"""Reads of the rule tables, compiled into the in-memory rule set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from django.conf import settings

from control.selectors import access_load, closures_load
from partitions import models
from partitions.patterns import Pattern
from partitions.rules import (
    Access,
    Action,
    ChannelRule,
    Defaults,
    PartitionKey,
    PartitionRule,
    Permission,
    RateLimit,
    RuleSet,
    build,
    closure_of,
    split_ids,
)


def ruleset_version() -> int:
    row = models.RuleSetVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    return int(row or 0)


# Centrifugo's subscription options (the subscribe result's `override`): the "subscription" group.
OVERRIDE_FIELDS = tuple(f.name for f in models.CHANNEL_RULE_FIELDS if f.group == "subscription")


def compile_schema(schema: Any) -> Callable[[bytes], str | None]:
    """A checker for publication data: None when it conforms, else the first problem and where."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)

    def check(data: bytes) -> str | None:
        try:
            value = msgspec.json.decode(data)
            error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))), None)
        except (ValueError, RecursionError):  # msgspec's errors, invalid UTF-8, nesting
            return "data is not JSON, so it cannot match the channel's schema"
        if error is None:
            return None
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        return f"data does not match the channel's schema at {where}: {error.message}"

    return check


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
        schema_check=compile_schema(row.publish_schema) if row.publish_schema is not None else None,
        allow_binary=row.allow_binary,
        rate_limit=RateLimit(row.publish_rate_limit, row.publish_rate_window) if row.publish_rate_limit else None,
        overrides={name: value for name in OVERRIDE_FIELDS if (value := getattr(row, name)) is not None},
        options={f.name: getattr(row, f.name) for f in models.CHANNEL_RULE_FIELDS if f.compiled},
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
        max_age_seconds=row.max_age_seconds,
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
    return build(
        version,
        channel_rules,
        partition_rules,
        default_partitioning(),
        access=access_load(),
        closures=closures_load(),
    )


def channel_rules_shadowed() -> dict[int, ChannelRule]:
    """Enabled rules that can never decide, each with the rule that hides it."""
    from partitions.rules import shadowed_rules

    return shadowed_rules([compile_channel_rule(r) for r in models.ChannelRule.objects.filter(enabled=True)])


@dataclass(frozen=True, slots=True)
class Explanation:
    allowed: bool
    reason: str
    rule_id: int | None
    stream_key: str | None
    partition: int | None
    store: bool
    closure_id: int | None = None  # the operator's closure that refused (it overrides every rule)


def rule_explain(*, channel: str, user: str, roles: list[str], action: Action) -> Explanation:
    """What the callbacks would decide right now, and where the message would be stored."""
    from partitions.store import rules_store
    from streams.writer import stream_key

    ruleset = rules_store.current()
    decision = ruleset.decide(action, channel=channel, user=user, roles=roles)
    target = ruleset.target(channel=channel, user=user)
    key = stream_key(target.stream, target.partition) if target.store else None
    return Explanation(
        allowed=decision.allowed,
        reason=decision.reason,
        rule_id=decision.rule.id if decision.rule else None,
        stream_key=key if action is Action.PUBLISH else None,
        partition=target.partition if action is Action.PUBLISH and target.store else None,
        store=target.store,
        closure_id=closure.id if (closure := closure_of(decision)) else None,
    )
