from __future__ import annotations

from django.urls import path

from bench.gateway import views
from callbacks.handlers import PublishHandler
from callbacks.views import CentrifugoProxyView
from realtime.urls import urlpatterns as gateway_urlpatterns

bench_urlpatterns = [
    # Served on the event loop like /centrifugo/publish (the fast path reads this table too).
    path("centrifugo/publish-noop", CentrifugoProxyView.as_view(handler=views.NoopPublishHandler())),
    path("centrifugo/publish-plain", views.plain_publish),
    # The shipped DRF view, reached through Django's request cycle (realtime.wsgi's fast path skips it).
    path("centrifugo/publish-drf", views.DjangoOnlyView.as_view(handler=PublishHandler())),
]
urlpatterns = [*bench_urlpatterns, *gateway_urlpatterns]
