"""The operator controls in the admin. Tokens: every token the commands issued (never the token
itself), with the revocations. Bans: saved and deleted through control.services (the rule-set
version bump every callback process picks up within RULES_POLL_INTERVAL). The audit trail, read
only. Each action is audited with the admin user as actor, like the commands. The Users page is
control/users.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone

from control import models, services, when
from control.selectors import MAX_ID_DIGITS


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


class CheckedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Refuses what Django's admin would pass on to the database and fail on with a 500: NUL in a
    list's filter values (PostgreSQL refuses NUL in text; the search box refuses it already), and
    an action on a selection that is not row ids (a forged form)."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if any("\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values):
            return HttpResponseBadRequest("A filter value cannot contain NUL characters.", content_type="text/plain")
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME) if request.method == "POST" else []
        if not all(pk.isascii() and pk.isdigit() and len(pk) <= MAX_ID_DIGITS for pk in selected):
            self.message_user(request, "Nothing done: the selection names rows that do not exist.", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)


class ReadOnlyAdmin(CheckedAdmin):
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


# --- Users: bans and the audit trail ------------------------------------------------------


class BanForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = models.Ban
        fields = ("user", "reason", "until")

    def clean_until(self) -> Any:
        until = self.cleaned_data["until"]
        if until is not None:
            try:
                until = when.in_range(until)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        if until is not None and until <= timezone.now():
            raise forms.ValidationError("The ban would end before it starts: leave it empty or pick a later time.")
        return until


@admin.register(models.Ban)
class BanAdmin(CheckedAdmin):
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
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "target", "reason")
    list_filter = ("action", "actor")
    search_fields = ("target",)
    readonly_fields = ("at", "actor", "action", "target", "reason", "detail")
    date_hierarchy = "at"


from control import closures_admin  # noqa: E402,F401  (the kill switch pages: control/closures_admin.py)
