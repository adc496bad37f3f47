"""The hot proxy calls, served in front of Django's request cycle.

Every publish and subscribe waits on a callback, and Django's request cycle (request and response
objects, signals, middleware, URL resolution, DRF dispatch) cost about as much as the callback's
own work: measured in-process on the publish callback with a real Redis, 313-377 us per call
through Django and DRF against 170-182 us through this path, the same handler and Redis write.
So `realtime.wsgi` wraps Django's WSGI application in `ProxyFastPath`: a POST to
`/centrifugo/{refresh,subscribe,sub_refresh,publish,rpc}` goes straight to `proxy_answer` with the
same view's `handle()` (the secret check, msgspec structs, rules, stream write, metrics and request
ids are shared, not copied); everything else — connect (it reads the session cookie), the server
API, /health, /metrics, the admin — goes through Django and DRF as usual. Django's test client
calls the DRF views directly, and the end-to-end tests go through gunicorn and this path, so both
are tested.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

from callbacks import protocol
from callbacks.base import SECRET_META_KEY, CentrifugoProxyView, proxy_answer
from realtime.observability import observe_callback, request_id

logger = logging.getLogger("callbacks")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_STATUS = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized", 413: "413 Payload Too Large",
           500: "500 Internal Server Error"}  # fmt: skip
_INTERNAL = protocol.error(100, "internal error")


class ProxyFastPath:
    def __init__(self, django_app: WSGIApp, extra: dict[str, CentrifugoProxyView] | None = None) -> None:
        from callbacks import views

        self.django_app = django_app
        self.views: dict[str, CentrifugoProxyView] = {
            f"/centrifugo/{view.kind}": view()
            for view in (views.RefreshView, views.SubscribeView, views.SubRefreshView, views.PublishView, views.RpcView)
        }
        self.views.update(extra or {})  # bench/ adds its no-op publish here

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        view = self.views.get(environ.get("PATH_INFO", ""))
        if view is None or environ.get("REQUEST_METHOD") != "POST":
            return self.django_app(environ, start_response)
        started = time.perf_counter()
        token = request_id.set(environ.get("HTTP_X_REQUEST_ID") or None)
        try:
            status, body = self._answer(view, environ)
            rid = request_id.get()
        finally:
            request_id.reset(token)
        observe_callback(view.kind, started, body, status)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if rid:
            headers.append(("X-Request-Id", rid))
        start_response(_STATUS[status], headers)
        return [body]

    def _answer(self, view: CentrifugoProxyView, environ: dict[str, Any]) -> tuple[int, bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 400, protocol.error(protocol.BAD_REQUEST, "bad request: invalid Content-Length")
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return 413, protocol.error(protocol.LIMIT_EXCEEDED, "request body too large")
        try:
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            return proxy_answer(
                view, body, secret=environ.get(SECRET_META_KEY, ""), remote=environ.get("REMOTE_ADDR", "")
            )
        except Exception:
            # Django would turn this into a 500 too; say so in the protocol's shape and log it.
            logger.exception("%s: unexpected error", view.kind)
            return 500, _INTERNAL
