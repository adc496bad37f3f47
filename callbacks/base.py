"""What every proxy callback shares: only Centrifugo may call, the body must be the protocol's,
the answer is the protocol's. Subclasses implement `handle(payload) -> bytes`."""

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
from realtime.observability import observe_callback

logger = logging.getLogger("callbacks")

JSON = "application/json"


def reply(body: bytes, status: int = 200) -> HttpResponse:
    return HttpResponse(body, content_type=JSON, status=status)


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "request_type"):
            cls._decode = staticmethod(msgspec.json.Decoder(cls.request_type).decode)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """Instead of DRF's per-request negotiation, versioning, authentication, permission and
        throttle steps: the shared secret (checked in `_answer`) is the only authentication, and
        every answer is JSON in the protocol's shape. DRF's own errors (405) still render."""
        self.format_kwarg = None
        request.accepted_renderer = _RENDERER
        request.accepted_media_type = JSON

    def post(self, request: Request) -> HttpResponse:
        started = time.perf_counter()
        response = self._answer(request)
        observe_callback(self.kind, started, response.content, response.status_code)
        return response

    def _answer(self, request: Request) -> HttpResponse:
        secret = request.META.get(_SECRET_META_KEY, "")
        if not hmac.compare_digest(secret.encode(), settings.CENTRIFUGO_PROXY_SECRET.encode()):
            # Centrifugo never sends a wrong secret; someone else is calling. Change nothing.
            logger.warning(
                "%s: rejected a call without the proxy secret from %s", self.kind, request.META.get("REMOTE_ADDR")
            )
            return reply(protocol.error(protocol.BAD_REQUEST, "missing or wrong proxy secret"), status=401)
        try:
            payload = self._decode(request.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return reply(protocol.error(protocol.BAD_REQUEST, f"bad request: {exc}"), status=400)
        except RequestDataTooBig:
            return reply(protocol.error(protocol.LIMIT_EXCEEDED, "request body too large"), status=413)
        return reply(self.handle(payload))

    def handle(self, payload: Any) -> bytes:
        raise NotImplementedError

    _decode: Any


_RENDERER = JSONRenderer()
_SECRET_META_KEY = "HTTP_" + settings.CENTRIFUGO_PROXY_SECRET_HEADER.upper().replace("-", "_")
