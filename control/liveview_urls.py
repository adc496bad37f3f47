"""The live view's pages, mounted at admin/live/ by realtime/urls.py (before the admin's catch-all)."""

from __future__ import annotations

from django.urls import path

from control.liveview_views import live_events, live_token, live_view

app_name = "liveview"
urlpatterns = [
    path("", live_view, name="page"),
    path("token/", live_token, name="token"),
    path("events/", live_events, name="events"),
]
