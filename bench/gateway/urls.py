from __future__ import annotations

from django.urls import path

from bench.gateway import views
from callbacks.views import PublishView
from realtime.urls import urlpatterns as gateway_urlpatterns

bench_urlpatterns = [
    path("centrifugo/publish-noop", views.NoopPublishView.as_view()),
    path("centrifugo/publish-plain", views.plain_publish),
    # The shipped DRF view, reached through Django's request cycle (realtime.wsgi's fast path skips it).
    path("centrifugo/publish-drf", PublishView.as_view()),
]
urlpatterns = [*bench_urlpatterns, *gateway_urlpatterns]
