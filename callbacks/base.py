"""What every proxy callback shares: only Centrifugo may call, the body must be the protocol's,
the answer is the protocol's. Subclasses implement `handle(payload) -> bytes`.

`secret_refusal` (before the body is read) and `proxy_decode` (callbacks.json_checks, then the
request struct) are those shared steps, used by the DRF view below and by the ASGI fast path in
`callbacks.fastpath` (which serves the hot proxy calls in production without Django's request
cycle), so both answer byte for byte alike; `proxy_payload` chains them.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any, ClassVar

import msgspec
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from callbacks import protocol
from callbacks.json_checks import DECODE_ERRORS, json_problem
from realtime.observability import observe_callback
from realtime.request_body import limits

logger = logging.getLogger("callbacks")

JSON = "application/json"
SECRET_META_KEY = "HTTP_" + settings.CENTRIFUGO_PROXY_SECRET_HEADER.upper().replace("-", "_")
_NO_SECRET = protocol.error(protocol.BAD_REQUEST, "missing or wrong proxy secret")
TOO_BIG = protocol.error(protocol.LIMIT_EXCEEDED, "request body too large")


def reply(body: bytes, status: int = 200) -> HttpResponse:
    return HttpResponse(body, content_type=JSON, status=status)


def secret_ok(secret: str) -> bool:
    return hmac.compare_digest(secret.encode(), settings.CENTRIFUGO_PROXY_SECRET.encode())


def secret_refusal(view: CentrifugoProxyView, secret: str, remote: str) -> tuple[int, bytes] | None:
    """(401, reply) for a call without the proxy secret; None for Centrifugo's calls."""
    if secret_ok(secret):
        return None
    # Centrifugo never sends a wrong secret; someone else is calling. Change nothing.
    logger.warning("%s: rejected a call without the proxy secret from %s", view.kind, remote)
    return 401, _NO_SECRET


def proxy_decode(view: CentrifugoProxyView, body: bytes) -> Any:
    """The decoded request struct of one proxy call from Centrifugo, or (200, error reply).

    A body we refuse is answered 200 with error 107 (106 for a body over CALLBACK_MAX_BODY), not
    400: Centrifugo turns any non-200 answer into error 100 "internal", which is temporary, so
    the client's SDK would retry it forever; the protocol's error reaches the client as it is."""
    if len(body) > limits().callback:
        return 200, TOO_BIG
    problem = json_problem(body)
    if problem is not None:
        return 200, protocol.error(protocol.BAD_REQUEST, problem)
    try:
        return view._decode(body)
    except DECODE_ERRORS as exc:
        return 200, protocol.error(protocol.BAD_REQUEST, f"bad request: {exc}")


def proxy_payload(view: CentrifugoProxyView, body: bytes, *, secret: str, remote: str) -> Any:
    """The decoded request struct of one proxy call, or the (HTTP status, reply body) refusing it."""
    return secret_refusal(view, secret, remote) or proxy_decode(view, body)


def proxy_answer(view: CentrifugoProxyView, body: bytes, *, secret: str, remote: str) -> tuple[int, bytes]:
    """(HTTP status, reply body) for one proxy call: secret, then decode, then the view's handle()."""
    payload = proxy_payload(view, body, secret=secret, remote=remote)
    if isinstance(payload, tuple):
        return payload
    return 200, view.handle(payload)


class CentrifugoProxyView(APIView):
    """A DRF view whose input contract is a msgspec struct from `callbacks.protocol`.

    Authentication is a constant-time comparison of the shared secret Centrifugo sends in a static
    header; no user authentication, permission or throttling classes run on this path.
    """

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    request_type: ClassVar[type[msgspec.Struct]]
    kind: ClassVar[str]
    # How the ASGI fast path runs the handler: False, on the event loop (`handle_async`; the
    # default runs `handle`, which must then do no blocking I/O); True, `handle` in a thread
    # (it reads the database or uses redis-py).
    blocking: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "request_type"):
            cls._decode = staticmethod(msgspec.json.Decoder(cls.request_type).decode)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """Instead of DRF's per-request negotiation, versioning, authentication, permission and
        throttle steps: the shared secret is the only authentication, and every answer is JSON
        in the protocol's shape. DRF's own errors (405) still render."""
        self.format_kwarg = None
        request.accepted_renderer = _RENDERER
        request.accepted_media_type = JSON

    def post(self, request: Request) -> HttpResponse:
        started = time.perf_counter()
        # The secret before the body: a caller without it never has its body read.
        refused = secret_refusal(self, request.META.get(SECRET_META_KEY, ""), request.META.get("REMOTE_ADDR", ""))
        if refused is not None:
            status, answer = refused
        else:
            try:
                body = request.body
            except RequestDataTooBig:
                status, answer = 200, TOO_BIG
            else:
                payload = proxy_decode(self, body)
                status, answer = payload if isinstance(payload, tuple) else (200, self.handle(payload))
        observe_callback(self.kind, started, answer, status)
        return reply(answer, status)

    def handle(self, payload: Any) -> bytes:
        raise NotImplementedError

    async def handle_async(self, payload: Any) -> bytes:
        return self.handle(payload)

    _decode: Any


_RENDERER = JSONRenderer()
