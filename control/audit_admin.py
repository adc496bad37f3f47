"""The audit trail of operator actions, read-only (rule changes have their own page, Rule changes)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from control.models import AuditEntry


class AuditEntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("at", "actor", "action", "target", "reason")
    list_filter = ("action",)
    search_fields = ("target", "actor", "reason")
    readonly_fields = ("at", "actor", "action", "target", "reason", "detail")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Another operator-controls branch may register its own; the first one wins.
if not admin.site.is_registered(AuditEntry):
    admin.site.register(AuditEntry, AuditEntryAdmin)
