"""The admin's Users page, for an incident: find a user by id (or login), see their ban and their
tokens, and disconnect, ban or unban them. A plain view behind the admin's login (staff only, CSRF
checked), mounted by control/urls.py; acting needs the permission to change bans."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from control import models, selectors, services, when
from control.admin import disconnect_failed_message


class ActionForm(forms.Form):
    user = forms.CharField(max_length=255)
    action = forms.ChoiceField(choices=[("disconnect", "disconnect"), ("ban", "ban"), ("unban", "unban")])
    reason = forms.CharField(required=False, max_length=1000)
    duration = forms.CharField(required=False, help_text="Ban for: 30m, 2h, 7d; empty: until unbanned.")

    def clean_duration(self) -> object:
        text = self.cleaned_data["duration"].strip()
        if not text:
            return None
        try:
            return when.duration(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@require_http_methods(["GET", "HEAD", "POST"])
def users_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _act(request)
    query = request.GET.get("q", "").strip()
    # A search no user id can match (the id's own limits): said so, not sent to the database,
    # which refuses NUL in text (PostgreSQL) with an error.
    problem = services.user_id_problem(query) if query else None
    rows = selectors.users_overview(query=query) if problem is None else []
    context = {
        **admin.site.each_context(request),
        "title": "Users",
        "query": query,
        "rows": rows,
        "tokens_url": _changelist_url("issuedtoken"),
        "can_act": request.user.has_perm("control.change_ban"),
        "opts": models.Ban._meta,
        "problem": problem,
    }
    return TemplateResponse(request, "admin/control/users.html", context, status=400 if problem else 200)


def _act(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("control.change_ban"):
        raise PermissionDenied("disconnecting and banning users needs the permission to change bans")
    form = ActionForm(request.POST)
    back = HttpResponseRedirect(f"{request.path}?{urlencode({'q': request.POST.get('q', '')})}")
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(str(e) for e in errors)}" for field, errors in form.errors.items())
        messages.error(request, f"Nothing done: {problems}")
        return back
    user, reason, actor = form.cleaned_data["user"], form.cleaned_data["reason"], request.user.get_username()
    action = form.cleaned_data["action"]
    try:
        if action == "disconnect":
            services.user_disconnect(user=user, actor=actor, reason=reason)
            messages.success(request, f"Disconnected every connection of {user!r} (the client may reconnect).")
        elif action == "ban":
            duration = form.cleaned_data["duration"]
            until = timezone.now() + duration if duration else None
            try:
                services.user_ban(user=user, actor=actor, reason=reason, until=until)
            except services.DisconnectFailed as exc:
                messages.warning(request, disconnect_failed_message(user, exc))
            else:
                end = f"until {until:%Y-%m-%d %H:%M:%S} UTC" if until else "until unbanned"
                messages.success(request, f"Banned {user!r} {end}; their connections on every node are closed.")
        elif services.user_unban(user=user, actor=actor, reason=reason):
            messages.success(request, f"Unbanned {user!r}: their next connect is allowed.")
        else:
            messages.warning(request, f"{user!r} is not banned: nothing changed.")
    except ValueError as exc:
        messages.error(request, f"Nothing done: {exc}")
    except services.DisconnectFailed as exc:
        messages.error(request, f"{user!r} was NOT disconnected: {exc}")
    return back


def _changelist_url(model: str) -> str:
    try:
        return reverse(f"admin:control_{model}_changelist")
    except NoReverseMatch:  # not in the admin (yet)
        return ""
