"""Writes to the control tables. Each one that changes a callback's decision bumps RuleSetVersion
in the same transaction (so every process reloads, as for a rule change) and is audited."""

from __future__ import annotations

from typing import Any

from control import models


def audit(*, actor: str, action: str, target: str, reason: str = "", **detail: Any) -> models.AuditEntry:
    """Record one operator action (call it inside the action's transaction)."""
    return models.AuditEntry.objects.create(actor=actor, action=action, target=target, reason=reason, detail=detail)
