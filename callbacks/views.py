"""The Centrifugo proxy callbacks as DRF views: the way to add or override a callback in this
Django project (README, "Adding a callback"). A view carries its `Handler` and runs it through
callbacks.pipeline, as the event-loop transport (callbacks.fastpath) does: both answer byte for
byte alike.

Authentication is a constant-time comparison of the shared secret Centrifugo sends in a static
header; no user authentication, permission or throttling classes run on this path.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from callbacks import pipeline

JSON = "application/json"
SECRET_META_KEY = "HTTP_" + settings.CENTRIFUGO_PROXY_SECRET_HEADER.upper().replace("-", "_")


def reply(body: bytes, status: int = 200) -> HttpResponse:
    return HttpResponse(body, content_type=JSON, status=status)


class CentrifugoProxyView(APIView):
    """Answers one proxy kind with `handler` (set it on a subclass, or `as_view(handler=...)`)."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    on_loop = True  # False: the event-loop transport leaves this route to Django (callbacks.fastpath)
    handler: pipeline.Handler[Any] = None  # type: ignore[assignment]  # a subclass or as_view() sets it

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """Instead of DRF's per-request negotiation, versioning, authentication, permission and
        throttle steps: the shared secret is the only authentication, and every answer is JSON
        in the protocol's shape. DRF's own errors (405) still render."""
        self.format_kwarg = None
        request.accepted_renderer = _RENDERER
        request.accepted_media_type = JSON

    def post(self, request: Request) -> HttpResponse:
        started = pipeline.now()
        handler = self.handler
        meta = request.META
        remote = meta.get("REMOTE_ADDR", "")
        # The secret before the body: a caller without it never has its body read.
        refused = pipeline.refusal(handler, meta.get(SECRET_META_KEY, ""), remote)
        if refused is None:
            try:
                body = request.body
            except RequestDataTooBig:
                refused = 200, pipeline.TOO_BIG
        if refused is not None:
            status, answer = pipeline.refused(handler, started, *refused)
            return reply(answer, status)
        call = pipeline.NO_CALL
        if handler.uses_session:
            call = pipeline.Call(session_key=request.COOKIES.get(settings.SESSION_COOKIE_NAME, ""))
        status, answer = pipeline.answer(handler, body, call, started=started)
        return reply(answer, status)


_RENDERER = JSONRenderer()
