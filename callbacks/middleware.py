"""Centrifugo's proxy calls go straight to their views.

They are machine-to-machine requests authenticated by a shared secret: sessions, CSRF, messages,
clickjacking headers, static files and slash-appending do nothing for them, yet cost about a
quarter of a publish callback's time (bench/: with and without the stack). Placed right after the
request-id middleware, this sends `/centrifugo/<kind>` to its view and everything else down the
normal stack. The routes come from callbacks/urls.py, so there is one list of them.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class ProxyFastPathMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from callbacks.urls import urlpatterns

        self.get_response = get_response
        self.views: dict[str, Callable[..., HttpResponse]] = {
            f"/centrifugo/{pattern.pattern}": pattern.callback for pattern in urlpatterns
        }

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = self.views.get(request.path_info)
        if view is None:
            return self.get_response(request)
        return view(request)
