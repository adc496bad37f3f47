from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, register_converter

from callbacks.presence_api import ChannelConverter, PresenceStatsView, PresenceView
from callbacks.server_api import PublishApiView
from realtime.health import health
from realtime.observability import metrics_view

register_converter(ChannelConverter, "channel")

urlpatterns = [
    path("centrifugo/", include("callbacks.urls")),
    path("api/publish", PublishApiView.as_view()),
    # the channel is the rest of the path, '/' included (callbacks/presence_api.py says what is accepted)
    path("api/channels/<channel:channel>/presence", PresenceView.as_view()),
    path("api/channels/<channel:channel>/presence_stats", PresenceStatsView.as_view()),
    path("health", health),
    path("metrics", metrics_view),
    # before the admin's catch-all: the message-log pages (streams/admin.py), the Users page (control/users.py)
    path("admin/streams/", include("streams.urls")),
    path("admin/control/users/", include("control.urls")),
    path("admin/live/", include("control.liveview_urls")),  # the live view (control/liveview_views.py)
    path("admin/", admin.site.urls),
]
