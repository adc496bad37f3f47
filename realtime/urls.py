from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from realtime.health import health

urlpatterns = [
    path("centrifugo/", include("callbacks.urls")),
    path("health", health),
    path("admin/", admin.site.urls),
]
