"""Bench-only variants of the publish callback, built from the gateway's own pieces."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from callbacks import protocol
from callbacks.base import SECRET_META_KEY, CentrifugoProxyView, proxy_answer, reply
from callbacks.protocol import PublishRequest
from callbacks.views import PublishView, _payload_bytes, _roles
from partitions.rules import Action
from partitions.store import rules_store
from streams.payload import is_json_text


class NoopPublishView(CentrifugoProxyView):
    """The publish path without the XADD: the same secret check, decode (b64data too, and the
    JSON-or-binary check) and rule decision (and the stream target it would pick), then an empty
    result. Full path / this = what storing costs."""

    request_type = PublishRequest
    kind = "publish"

    def handle(self, payload: PublishRequest) -> bytes:
        data = _payload_bytes(payload)
        if data is None or not is_json_text(data):
            return protocol.error(protocol.BAD_REQUEST, "the bench publishes JSON")
        ruleset = rules_store.current()
        decision = ruleset.decide(
            Action.PUBLISH, channel=payload.channel, user=payload.user, roles=_roles(payload.meta)
        )
        if not decision.allowed:
            return protocol.DENIED
        ruleset.target(channel=payload.channel, user=payload.user)
        return protocol.EMPTY_RESULT


_publish = PublishView()  # handle() reads no request state, so one instance serves every call


@csrf_exempt
def plain_publish(request: HttpRequest) -> HttpResponse:
    """The shipped publish answer (proxy_answer: secret, decode, handle()) in a plain Django function
    view: Django's request cycle without DRF's dispatch."""
    if request.method != "POST":
        return HttpResponse(status=405)
    status, body = proxy_answer(
        _publish,
        request.body,
        secret=request.META.get(SECRET_META_KEY, ""),
        remote=request.META.get("REMOTE_ADDR", ""),
    )
    return reply(body, status=status)
