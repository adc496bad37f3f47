"""The routing table of the proxy callbacks: one line a kind. The DRF views are built from it,
and the event-loop transport (callbacks.fastpath) serves every `proxy(...)` line of it too."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path

from callbacks import handlers
from callbacks.pipeline import Handler
from callbacks.views import CentrifugoProxyView


def proxy(handler: Handler[Any]) -> URLPattern:
    """The route of one proxy kind, at its `kind`, answered by `handler` on either transport."""
    return path(handler.kind, CentrifugoProxyView.as_view(handler=handler), name=f"proxy-{handler.kind}")


urlpatterns = [
    proxy(handlers.ConnectHandler()),
    proxy(handlers.RefreshHandler()),
    proxy(handlers.SubscribeHandler()),
    proxy(handlers.SubRefreshHandler()),
    proxy(handlers.PublishHandler()),
    proxy(handlers.RpcHandler()),
]
