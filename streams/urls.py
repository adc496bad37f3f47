"""The admin's message-log pages. realtime/urls.py mounts them at admin/streams/, before the admin's
own catch-all URLs."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from streams.admin import stream_detail_view, stream_list_view

app_name = "streams"
urlpatterns = [
    path("", admin.site.admin_view(stream_list_view), name="list"),
    path("<slug:name>/", admin.site.admin_view(stream_detail_view), name="detail"),
]
