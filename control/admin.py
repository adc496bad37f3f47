"""The operator controls in the admin. Tokens: every token the commands issued (never the token
itself), with the revocations; each action goes through control.services, audited with the admin
user as actor, like the commands."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from control import models, services


class RevokeForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False,
                             help_text="Kept in the audit trail.")  # fmt: skip


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Revoked"), ("no", "Not revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset


class ExpiredFilter(admin.SimpleListFilter):
    title = "expired"
    parameter_name = "expired"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Expired"), ("no", "Still valid")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(expires_at__lte=timezone.now())
        if self.value() == "no":
            return queryset.filter(expires_at__gt=timezone.now())
        return queryset


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Rows written by control.services only: listed and viewed here, never edited."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.IssuedToken)
class IssuedTokenAdmin(ReadOnlyAdmin):
    list_display = ("jti", "kind", "user", "channel", "issued_at", "expires_at", "revoked_at", "issued_by")
    list_filter = ("kind", RevokedFilter, ExpiredFilter, "issued_at", "expires_at")
    search_fields = ("jti", "user", "channel", "issued_by")
    date_hierarchy = "issued_at"
    actions = ["revoke_tokens", "revoke_users_tokens"]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("control.change_issuedtoken"))

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[models.IssuedToken]) -> HttpResponse | None:
        reason = self._reason(request)
        if reason is None:
            return self._ask(request, queryset, "Revoke selected tokens", "revoke_tokens")
        done = 0
        for token in queryset:
            try:
                services.token_revoke(jti=token.jti, actor=request.user.get_username(), reason=reason)
            except services.TokenRevokeError as exc:
                self.message_user(request, str(exc), messages.WARNING)
                continue
            done += 1
            if token.kind == models.IssuedToken.KIND_SUBSCRIPTION:
                self._warn(request, services.subscriptions_end(user=token.user, channel=token.channel))
        self.message_user(request, f"Revoked {done} token(s): in force on every node within a second.")
        return None

    @admin.action(description="Revoke all tokens of these users", permissions=["revoke"])
    def revoke_users_tokens(self, request: HttpRequest, queryset: QuerySet[models.IssuedToken]) -> HttpResponse | None:
        reason = self._reason(request)
        if reason is None:
            return self._ask(request, queryset, "Revoke all tokens of these users", "revoke_users_tokens")
        users = sorted(set(queryset.values_list("user", flat=True)))
        for user in users:
            services.tokens_revoke(user=user, actor=request.user.get_username(), reason=reason)
            self._warn(request, services.user_connections_drop(
                user=user, code=services.DISCONNECT_RECONNECT_TOKENS_REVOKED, reason="tokens revoked"))  # fmt: skip
        self.message_user(request, f"Revoked every token issued until now to {', '.join(map(repr, users))}.")
        return None

    @staticmethod
    def _reason(request: HttpRequest) -> str | None:
        """The reason from the confirmation page's form; None: not confirmed yet."""
        if "apply" not in request.POST:
            return None
        form = RevokeForm(request.POST)
        return form.cleaned_data["reason"] if form.is_valid() else None

    def _ask(self, request: HttpRequest, queryset: QuerySet[Any], title: str, action: str) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta,
                   "tokens": queryset, "form": RevokeForm(), "action": action,
                   "users": sorted(set(queryset.values_list("user", flat=True)))}  # fmt: skip
        return TemplateResponse(request, "admin/control/revoke.html", context)

    def _warn(self, request: HttpRequest, problem: str | None) -> None:
        if problem is not None:
            self.message_user(
                request,
                f"Centrifugo could not act at once ({problem}); the revocation is in force anyway: each "
                "connection is cut at its next check.",
                messages.WARNING,
            )


@admin.register(models.UserTokenCutoff)
class UserTokenCutoffAdmin(ReadOnlyAdmin):
    list_display = ("user", "before", "actor", "reason", "at")
    search_fields = ("user", "actor", "reason")
