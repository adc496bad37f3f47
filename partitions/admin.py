"""Operators run the gateway from here. Saves and deletes go through partitions.services: the same
validation as `import_rules`, an audit record, and a rule-set version bump that every callback
process picks up within RULES_POLL_INTERVAL."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from control.selectors import closures_in_force
from partitions import models, selectors, services
from partitions.rules import Action


class RuleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.rule_save(rule=obj, actor=request.user.get_username())

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.rule_delete(rule=obj, actor=request.user.get_username())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for rule in queryset:
                services.rule_delete(rule=rule, actor=request.user.get_username())


class ChannelRuleForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = models.ChannelRule
        fields = tuple(f.name for f in models.CHANNEL_RULE_FIELDS)
        widgets = {"publish_schema": forms.Textarea(attrs={"rows": 6, "cols": 80})}


def channel_rule_fieldsets() -> Any:  # the admin's fieldsets: ((title | None, {"fields": names}), ...)
    """The form's sections, in the order of models.CHANNEL_RULE_FIELDS."""
    sections: dict[str, list[str]] = {}
    for f in models.CHANNEL_RULE_FIELDS:
        sections.setdefault(f.section, []).append(f.name)
    return tuple((title or None, {"fields": tuple(names)}) for title, names in sections.items())


@admin.register(models.ChannelRule)
class ChannelRuleAdmin(RuleAdmin):
    form = ChannelRuleForm
    list_display = (
        "pattern",
        "priority",
        "enabled",
        "subscribe_access",
        "publish_access",
        "limits",
        "shadowed_by",
        "updated_at",
    )
    list_editable = ("priority", "enabled")
    list_filter = ("enabled", "subscribe_access", "publish_access")
    search_fields = ("pattern", "description")
    change_list_template = "admin/partitions/channelrule/change_list.html"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return channel_rule_fieldsets()  # the form's fields follow (ModelAdmin.get_form)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        self._shadowed = selectors.channel_rules_shadowed()
        # The kill switch overrides every rule: operators looking at rules must see it first.
        extra_context = {**(extra_context or {}), "closures": closures_in_force()}
        return super().changelist_view(request, extra_context)

    @admin.display(description="never decides: hidden by")
    def shadowed_by(self, obj: models.ChannelRule) -> str:
        cover = getattr(self, "_shadowed", {}).get(obj.pk)
        return f"#{cover.id} {cover.pattern.text}" if cover else ""

    @admin.display(description="limits")
    def limits(self, obj: models.ChannelRule) -> str:
        parts = []
        if obj.max_payload_bytes:
            parts.append(f"≤{obj.max_payload_bytes} B")
        if obj.publish_schema is not None:
            parts.append("schema")
        if obj.allow_binary:
            parts.append("binary")
        if obj.publish_rate_limit:
            parts.append(f"{obj.publish_rate_limit}/{obj.publish_rate_window}s")
        return ", ".join(parts)

    def response_post_save_change(self, request: HttpRequest, obj: Any) -> HttpResponseRedirect:
        self._warn_if_shadowed(request, obj)
        return super().response_post_save_change(request, obj)

    def response_post_save_add(self, request: HttpRequest, obj: Any) -> HttpResponseRedirect:
        self._warn_if_shadowed(request, obj)
        return super().response_post_save_add(request, obj)

    def _warn_if_shadowed(self, request: HttpRequest, obj: models.ChannelRule) -> None:
        cover = selectors.channel_rules_shadowed().get(obj.pk)
        if cover is not None:
            messages.warning(
                request,
                f"Rule '{obj.pattern}' can never decide: rule #{cover.id} '{cover.pattern.text}' comes first "
                "and matches every channel it matches. Give it a lower priority number, or narrow the other rule.",
            )

    def get_urls(self) -> list[URLPattern]:
        tester = path("tester/", self.admin_site.admin_view(self.tester_view), name="partitions_rule_tester")
        return [tester, *super().get_urls()]

    def tester_view(self, request: HttpRequest) -> HttpResponse:
        form = RuleTesterForm(request.GET or None)
        explanation = None
        if form.is_valid():
            explanation = selectors.rule_explain(
                channel=form.cleaned_data["channel"],
                user=form.cleaned_data["user"],
                roles=form.cleaned_data["roles"],
                action=Action(form.cleaned_data["action"]),
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Rule tester",
            "form": form,
            "explanation": explanation,
            "closures": closures_in_force(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/partitions/tester.html", context)


class RuleTesterForm(forms.Form):
    user = forms.CharField(required=False, help_text="Empty for an anonymous client.")
    roles = forms.CharField(required=False, help_text="Separated by commas or spaces.")
    channel = forms.CharField(max_length=1024)
    action = forms.ChoiceField(choices=[(a.value, a.value) for a in Action])

    def clean_roles(self) -> list[str]:
        return sorted(set(self.cleaned_data["roles"].replace(",", " ").split()))


class PartitionRuleForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = models.PartitionRule
        fields = models.PARTITION_RULE_FIELDS

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # (untyped in the stubs) copies the form's values onto self.instance
        if not self.errors:
            try:
                services.check_partition_shrink(rule=self.instance)
            except ValidationError as exc:
                self.add_error(None, exc)


@admin.register(models.PartitionRule)
class PartitionRuleAdmin(RuleAdmin):
    form = PartitionRuleForm
    list_display = models.PARTITION_RULE_FIELDS
    list_editable = ("priority", "enabled")
    search_fields = ("pattern", "stream")


@admin.register(models.RuleChange)
class RuleChangeAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("at", "actor", "action", "kind", "pattern")
    list_filter = ("action", "kind", "actor")
    search_fields = ("pattern", "actor")
    readonly_fields = ("at", "actor", "action", "kind", "pattern", "before", "after")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
