"""Operators edit rules here. Saves and deletes go through partitions.services, which bumps the
rule-set version so every callback process reloads within RULES_POLL_INTERVAL."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from partitions import models, services


class RuleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            obj.save()
            services.ruleset_bump()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.rule_delete(rule=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            queryset.delete()
            services.ruleset_bump()


@admin.register(models.ChannelRule)
class ChannelRuleAdmin(RuleAdmin):
    list_display = (
        "pattern",
        "priority",
        "enabled",
        "subscribe_access",
        "publish_access",
        "max_payload_bytes",
        "updated_at",
    )
    list_editable = ("priority", "enabled")
    list_filter = ("enabled", "subscribe_access", "publish_access")
    search_fields = ("pattern", "description")
    fieldsets = (
        (None, {"fields": ("pattern", "priority", "enabled", "description")}),
        ("Subscribe", {"fields": ("subscribe_access", "subscribe_users", "subscribe_roles")}),
        ("Publish", {"fields": ("publish_access", "publish_users", "publish_roles", "max_payload_bytes")}),
    )


@admin.register(models.PartitionRule)
class PartitionRuleAdmin(RuleAdmin):
    list_display = ("pattern", "priority", "enabled", "stream", "partitions", "key", "max_length", "store")
    list_editable = ("priority", "enabled")
    search_fields = ("pattern", "stream")
