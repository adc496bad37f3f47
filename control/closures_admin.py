"""The channel kill switch in the admin. Saves go through control.services (validated like the
commands, audited with the admin user as actor, the rule-set version bumped); a closure is never
deleted, it is reopened (kept, disabled, as history)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from control import models, services
from control.admin import CheckedAdmin


class ChannelClosureForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = models.ChannelClosure
        fields = ("pattern", "close_publish", "close_subscribe", "reason", "enabled")
        widgets = {"reason": forms.Textarea(attrs={"rows": 3, "cols": 80})}
        help_texts = {
            "pattern": "A channel-rule pattern: chat:*, orders:*:eu, news:global.",
            "close_subscribe": "Also refuse subscribes; live subscriptions end within seconds (their next re-check).",
            "reason": "Required. Refused clients get it in their error message (1423 'channel closed: ...').",
            "enabled": "Untick to reopen (or use the 'Reopen' action on the list).",
        }

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # (untyped in the stubs) copies the form's values onto self.instance
        if not self.errors:
            try:
                services.check_closure(self.instance)
            except ValidationError as exc:
                self.add_error(None, exc)


@admin.register(models.ChannelClosure)
class ChannelClosureAdmin(CheckedAdmin):
    form = ChannelClosureForm
    list_display = ("pattern", "enabled", "close_publish", "close_subscribe", "reason", "actor", "updated_at")
    list_filter = ("enabled", "close_subscribe")
    search_fields = ("pattern", "reason")
    readonly_fields = ("actor", "created_at", "updated_at")
    actions = ("reopen",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.ChannelClosure]:
        return super().get_queryset(request).order_by("-enabled", "pattern", "id")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.closure_save(closure=obj, actor=request.user.get_username())

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # reopen instead: the closure stays as history

    @admin.action(description="Reopen the selected channels")
    def reopen(self, request: HttpRequest, queryset: QuerySet[models.ChannelClosure]) -> None:
        lifted = [
            services.channel_reopen(closure=closure, actor=request.user.get_username()).pattern
            for closure in queryset.filter(enabled=True)
        ]
        if lifted:
            messages.success(request, f"Reopened {', '.join(lifted)}: every node applies it within seconds.")
        else:
            messages.info(request, "None of the selected closures was in force.")
