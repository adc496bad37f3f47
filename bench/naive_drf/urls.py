from __future__ import annotations

from django.urls import path

from bench.naive_drf.views import PublishView

urlpatterns = [path("centrifugo/publish", PublishView.as_view())]
