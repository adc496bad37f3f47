"""Rules as code: the YAML format of `export_rules` / `import_rules`.

    channel_rules:
      - pattern: "chat:*"
        priority: 100
        subscribe: {access: authenticated}
        publish: {access: roles, roles: [writer]}
        max_payload_bytes: 4096
        publish_schema: {type: object, required: [text]}
        allow_binary: false     # true: non-JSON publications are accepted (stored enc=binary)
        publish_rate_limit: {count: 10, per_seconds: 60}
        subscription: {presence: true, join_leave: false}
        workers: {join_leave: true, enrich: true}   # log join/leave entries; enrich what subscribers get
    partition_rules:
      - pattern: "chat:*"
        stream: chat
        partitions: 8
        key: channel            # channel | user | none
        max_length: 100000
        max_age_seconds: 86400
        store: true

Omitted keys take the model defaults. Rules are matched to existing ones by pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BooleanField

from partitions import models, services

PARTITION_KEYS = set(models.PARTITION_RULE_FIELDS)


class RulesFileError(Exception):
    """Names the rule and what is wrong with it; nothing was changed."""


def channel_rule_dump(rule: models.ChannelRule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in models.CHANNEL_RULE_FIELDS:
        value = getattr(rule, f.name)
        if f.ids:
            value = sorted(set(value.replace(",", " ").split()))
        if value in f.omit or (f.ids and not value) or (f.needs and getattr(rule, f.needs) in _field(f.needs).omit):
            continue
        (out.setdefault(f.group, {}) if f.group else out)[f.file_key] = value
    return out


def _field(name: str) -> models.RuleField:
    return next(f for f in models.CHANNEL_RULE_FIELDS if f.name == name)


def partition_rule_dump(rule: models.PartitionRule) -> dict[str, Any]:
    out = {k: getattr(rule, k) for k in ("pattern", "priority", "enabled", "stream", "partitions", "key", "store")}
    for optional in ("max_length", "max_age_seconds"):
        if getattr(rule, optional) is not None:
            out[optional] = getattr(rule, optional)
    return out


def rules_dump() -> dict[str, Any]:
    return {
        "channel_rules": [channel_rule_dump(r) for r in models.ChannelRule.objects.order_by("priority", "pattern")],
        "partition_rules": [
            partition_rule_dump(r) for r in models.PartitionRule.objects.order_by("priority", "pattern")
        ],
    }


def _unknown(where: str, item: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(item) - allowed)
    if extra:
        raise RulesFileError(f"{where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")


def _channel_fields(where: str, item: dict[str, Any]) -> dict[str, Any]:
    declared = models.CHANNEL_RULE_FIELDS  # read here: a test may declare another list
    _unknown(where, item, {f.file_key for f in declared if not f.group} | set(models.CHANNEL_RULE_GROUPS))
    groups: dict[str, dict[str, Any]] = {}
    for group, shape in models.CHANNEL_RULE_GROUPS.items():
        value = item.get(group, {})
        if not isinstance(value, dict):
            raise RulesFileError(f"{where}.{group}: must be {shape}")
        _unknown(f"{where}.{group}", value, {f.file_key for f in declared if f.group == group})
        groups[group] = value
    fields: dict[str, Any] = {}
    for f in declared:
        if f.name == "pattern":
            continue
        source = groups[f.group] if f.group else item
        if f.file_key not in source:
            if f.required and source:
                shape = models.CHANNEL_RULE_GROUPS[f.group]
                raise RulesFileError(f"{where}.{f.group}: must be {shape}")
            if f.missing is not models.KEEP:
                fields[f.name] = f.missing
            continue
        value = source[f.file_key]
        label = f"{where}.{f.group}.{f.file_key}" if f.group else f"{where}.{f.file_key}"
        if f.ids:
            if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
                raise RulesFileError(f"{label}: must be a list of ids")
            value = ", ".join(str(v) for v in value)
        elif isinstance(models.ChannelRule._meta.get_field(f.name), BooleanField) and not (
            isinstance(value, bool) or (value is None and f.missing is None)
        ):
            raise RulesFileError(f"{label}: must be true or false")
        fields[f.name] = value
    return fields


def _partition_fields(where: str, item: dict[str, Any]) -> dict[str, Any]:
    _unknown(where, item, PARTITION_KEYS)
    fields = {k: v for k, v in item.items() if k != "pattern"}
    fields.setdefault("max_length", None)
    fields.setdefault("max_age_seconds", None)
    return fields


@dataclass
class Plan:
    changes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)


def _apply(model: type[models.ChannelRule] | type[models.PartitionRule], where: str, pattern: str,
           fields: dict[str, Any], plan: Plan, actor: str) -> None:  # fmt: skip
    kind = "channel rule" if model is models.ChannelRule else "partition rule"
    rule = model.objects.filter(pattern=pattern).first()
    before = services.rule_snapshot(rule) if rule else None
    if rule is None:
        rule = model(pattern=pattern)
    for name, value in fields.items():
        if not hasattr(rule, name) or name == "pattern":
            raise RulesFileError(f"{where}: unknown key {name!r}")
        setattr(rule, name, value)
    try:
        services.rule_save(rule=rule, actor=actor)
    except ValidationError as exc:
        details = (
            "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            if hasattr(exc, "error_dict")
            else " ".join(exc.messages)
        )
        raise RulesFileError(f"{where} ({kind} {pattern!r}): {details}") from None
    after = services.rule_snapshot(rule)
    if before is None:
        plan.changes.append(f"create {kind} {pattern!r}")
    elif before != after:
        diff = ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in after if before.get(k) != after.get(k))
        plan.changes.append(f"update {kind} {pattern!r}: {diff}")


def rules_import(document: Any, *, actor: str, dry_run: bool = False, prune: bool = False) -> Plan:
    """Apply a rules document atomically: every rule is validated as the admin validates it, and
    the first bad one aborts the whole import with its position and pattern. With dry_run the
    same work runs and is rolled back, so the plan shows exactly what an import would change."""
    if not isinstance(document, dict) or not set(document) <= {"channel_rules", "partition_rules"}:
        raise RulesFileError("the file must be a mapping with 'channel_rules' and/or 'partition_rules' lists")
    plan = Plan()
    with transaction.atomic():
        for section, model, convert in (
            ("channel_rules", models.ChannelRule, _channel_fields),
            ("partition_rules", models.PartitionRule, _partition_fields),
        ):
            items = document.get(section) or []
            if not isinstance(items, list):
                raise RulesFileError(f"{section}: must be a list")
            seen: set[str] = set()
            for index, item in enumerate(items):
                where = f"{section}[{index}]"
                if not isinstance(item, dict) or not isinstance(item.get("pattern"), str):
                    raise RulesFileError(f"{where}: each rule is a mapping with a 'pattern' string")
                pattern = item["pattern"]
                if pattern in seen:
                    raise RulesFileError(f"{where}: pattern {pattern!r} appears twice")
                seen.add(pattern)
                _apply(model, where, pattern, convert(where, item), plan, actor)
            if prune and section in document:
                for rule in model.objects.exclude(pattern__in=seen):
                    services.rule_delete(rule=rule, actor=actor)
                    plan.changes.append(
                        f"delete {'channel' if model is models.ChannelRule else 'partition'} rule {rule.pattern!r}"
                    )
        if dry_run:
            transaction.set_rollback(True)
    return plan
