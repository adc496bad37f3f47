"""The admin's live view (staff only): pick a channel, watch its publications arrive (centrifuge-js in
the browser, served from our own static files), its joins and leaves where its rule logs them, and
its presence count.

The browser subscribes with tokens issued here to the staff user (their Django id as the
Centrifugo user, LIVE_VIEW_TOKEN_TTL seconds): a connection token and a subscription token for the
channel. Centrifugo verifies a subscription token itself and calls no subscribe proxy, so the view
works whatever the channel rules say about this user; the token turns the watcher's own presence
and join/leave off, so watching changes nothing the channel's members see. Opening the view is
audited (`liveview.opened`); the page fetches fresh tokens from `token/` before they expire, for a
channel opened in the same session only.

Anonymous visitors are sent to the admin login; a signed-in user who is not staff gets 403.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from control import liveview
from control.services import audit, connection_token_issue, subscription_token_issue
from partitions.store import rules_store
from realtime.redis import REDIS_ERRORS

View = Callable[..., HttpResponse]
ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")
# The watcher is invisible: not in presence, no join/leave of its own (Centrifugo's token claims).
WATCHER_OVERRIDE = {"presence": {"value": False}, "join_leave": {"value": False}}
OPENED_KEY = "liveview_channels"  # in the session: the channels this staff user opened (audited)
MAX_OPENED = 20


def staff_only(*, page: bool) -> Callable[[View], View]:
    """Anonymous: to the admin login (a `page`; the JSON endpoints answer 403). Signed in but not
    staff: 403 (the admin's own views would send them to the login page again)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                if page:
                    return redirect_to_login(request.get_full_path(), reverse("admin:login"))
                return JsonResponse({"error": "sign in to the admin first"}, status=403)
            if not (user.is_active and user.is_staff):
                raise PermissionDenied("the live view is for staff only")
            return view(request, *args, **kwargs)

        return never_cache(wrapper)

    return decorate


def _watcher(request: HttpRequest) -> tuple[str, str]:
    """(Centrifugo user id, display name) of the staff user: the id session connections use too."""
    return str(request.user.pk), request.user.get_username()


def _token(request: HttpRequest, channel: str, kind: str) -> str:
    """A token of `kind` for the staff user, recorded (control.IssuedToken, revocable like any other
    on the Tokens page) and audited (`token.issued`) with the staff user as the issuer."""
    user, name = _watcher(request)
    ttl, actor = settings.LIVE_VIEW_TOKEN_TTL, request.user.get_username()
    if kind == "connection":
        return connection_token_issue(user=user, ttl=ttl, actor=actor, info={"name": name, "live_view": True})
    return subscription_token_issue(user=user, channel=channel, ttl=ttl, actor=actor, override=WATCHER_OVERRIDE)


@staff_only(page=True)
@require_GET
def live_view(request: HttpRequest) -> HttpResponse:
    channel = request.GET.get("channel", "").strip()
    context: dict[str, Any] = {**admin.site.each_context(request), "title": "Live view", "channel": channel}
    if not channel:
        return TemplateResponse(request, "admin/control/liveview.html", context)
    problem = liveview.live_channel_problem(channel)
    if problem is not None:
        context["problem"] = problem
        return TemplateResponse(request, "admin/control/liveview.html", context, status=400)
    with transaction.atomic():
        audit(actor=request.user.get_username(), action="liveview.opened", target=channel,
              ttl=settings.LIVE_VIEW_TOKEN_TTL)  # fmt: skip
        tokens = {kind: _token(request, channel, kind) for kind in ("connection", "subscription")}
    # token/ renews tokens only for channels opened (so audited) in this session.
    opened = [c for c in request.session.get(OPENED_KEY, []) if c != channel][-(MAX_OPENED - 1) :]
    request.session[OPENED_KEY] = [*opened, channel]
    context["config"] = {
        "channel": channel,
        "websocketUrl": liveview.websocket_url(request),
        "tokens": tokens,
        "tokenUrl": reverse("liveview:token"),
        "eventsUrl": reverse("liveview:events"),
    }
    return TemplateResponse(request, "admin/control/liveview.html", context)


@staff_only(page=False)
@require_POST
def live_token(request: HttpRequest) -> HttpResponse:
    """A fresh token of `kind` (connection | subscription) for the page's getToken callbacks."""
    channel, kind = request.POST.get("channel", ""), request.POST.get("kind", "")
    if kind not in ("connection", "subscription"):
        return JsonResponse({"error": "kind must be connection or subscription"}, status=400)
    if channel not in request.session.get(OPENED_KEY, []):
        # Every channel a staff user gets tokens for is in the audit trail: through the page.
        return JsonResponse({"error": "open the live view of this channel first"}, status=403)
    return JsonResponse({"token": _token(request, channel, kind)})


def _entry_id(value: object) -> bool:
    """A Redis stream entry id: two whole numbers below 2**64 (Redis refuses a larger one, which
    would read as the message log being unavailable)."""
    if not (isinstance(value, str) and ENTRY_ID.fullmatch(value)):
        return False
    return all(int(part) < 2**64 for part in value.split("-"))


@staff_only(page=False)
@require_GET
def live_events(request: HttpRequest) -> HttpResponse:
    """Joins and leaves since `cursor` and the presence count, polled by the page every second."""
    channel = request.GET.get("channel", "")
    if (problem := liveview.live_channel_problem(channel)) is not None:
        return JsonResponse({"error": problem}, status=400)
    try:
        cursor = json.loads(request.GET.get("cursor") or "{}")
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        return JsonResponse({"error": "cursor must be the JSON object the last answer gave"}, status=400)
    if not isinstance(cursor, dict) or not all(_entry_id(v) for v in cursor.values()):
        return JsonResponse({"error": "cursor must map partition keys to entry ids"}, status=400)
    keys = liveview.join_leave_keys(rules_store.current(), channel)
    answer: dict[str, Any] = {"join_leave": bool(keys), "presence": liveview.presence_count(channel)}
    try:
        read = liveview.join_leave_read(keys, {k: v for k, v in cursor.items() if k in keys}, channel)
    except REDIS_ERRORS as exc:
        answer.update(events=[], cursor=cursor, error=f"the message log is unavailable: {exc}")
        return JsonResponse(answer)
    answer.update(events=read.events, cursor=read.cursor, behind=read.behind)
    return JsonResponse(answer)
