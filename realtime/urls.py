from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from callbacks.server_api import PublishApiView
from realtime.health import health
from realtime.observability import metrics_view

urlpatterns = [
    path("centrifugo/", include("callbacks.urls")),
    path("api/publish", PublishApiView.as_view()),
    path("health", health),
    path("metrics", metrics_view),
    # before the admin's catch-all: the message-log pages (streams/admin.py)
    path("admin/streams/", include("streams.urls")),
    path("admin/", admin.site.urls),
]
