"""Operator controls in the admin. Every save and delete here goes through control.services: the
rule-set version bump that every callback process picks up within RULES_POLL_INTERVAL, and an
audit entry with the admin user as the actor. The Users page is control/users.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from control import models, services


class BanForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = models.Ban
        fields = ("user", "reason", "until")

    def clean_until(self) -> Any:
        until = self.cleaned_data["until"]
        if until is not None and until <= timezone.now():
            raise forms.ValidationError("The ban would end before it starts: leave it empty or pick a later time.")
        return until


@admin.register(models.Ban)
class BanAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = BanForm
    list_display = ("user", "reason", "until", "in_force", "actor", "at")
    search_fields = ("user", "reason")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("user",) if obj is not None else ()  # another user is another ban

    @admin.display(boolean=True, description="in force")
    def in_force(self, obj: models.Ban) -> bool:
        return obj.until is None or obj.until > timezone.now()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        try:
            ban = services.user_ban(
                user=obj.user, actor=request.user.get_username(), reason=obj.reason, until=obj.until
            )
        except services.DisconnectFailed as exc:
            messages.warning(request, disconnect_failed_message(obj.user, exc))
            ban = models.Ban.objects.get(user=obj.user)
        obj.pk, obj.at, obj.actor = ban.pk, ban.at, ban.actor

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.user_unban(user=obj.user, actor=request.user.get_username())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for ban in queryset:
                services.user_unban(user=ban.user, actor=request.user.get_username())


def disconnect_failed_message(user: str, exc: Exception) -> str:
    return (
        f"{user!r} is banned (every callback refuses them within the rule poll interval), but their live "
        f"connections were not closed at once: {exc}. Each ends at its next subscribe, publish, rpc or "
        "refresh; or disconnect them again from the Users page once Centrifugo answers."
    )


@admin.register(models.AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("at", "actor", "action", "target", "reason")
    list_filter = ("action", "actor")
    search_fields = ("target",)
    readonly_fields = ("at", "actor", "action", "target", "reason", "detail")
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
