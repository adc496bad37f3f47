"""Bench-only variants of the publish callback, built from the gateway's own pieces."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from callbacks import pipeline, protocol
from callbacks.handlers import PublishHandler, _payload_bytes
from callbacks.pipeline import Call, Handler
from callbacks.protocol import PublishRequest
from callbacks.views import SECRET_META_KEY, CentrifugoProxyView, reply
from partitions.rules import Action
from partitions.store import rules_store
from streams.payload import is_json_text


class NoopPublishHandler(Handler[PublishRequest]):
    """The publish path without the XADD: the same secret check, decode (b64data too, and the
    JSON-or-binary check) and rule decision (and the stream target it would pick), then an empty
    result. Full path / this = what storing costs."""

    request_type = PublishRequest
    kind = "publish"

    def handle(self, payload: PublishRequest, call: Call) -> bytes:
        data = _payload_bytes(payload)
        if data is None or not is_json_text(data):
            return protocol.error(protocol.BAD_REQUEST, "the bench publishes JSON")
        ruleset = rules_store.current()
        decision = ruleset.decide(
            Action.PUBLISH,
            channel=payload.channel,
            user=payload.user,
            roles=protocol.connection_meta(payload.meta).roles,
        )
        if not decision.allowed:
            return protocol.DENIED
        ruleset.target(channel=payload.channel, user=payload.user)
        return protocol.EMPTY_RESULT


class DjangoOnlyView(CentrifugoProxyView):
    """The DRF view, never served on the event loop: what Django's request cycle costs."""

    on_loop = False


_publish = PublishHandler()


@csrf_exempt
def plain_publish(request: HttpRequest) -> HttpResponse:
    """The shipped publish answer (the pipeline: secret, decode, handler) in a plain Django function
    view: Django's request cycle without DRF's dispatch."""
    if request.method != "POST":
        return HttpResponse(status=405)
    started = pipeline.now()
    remote = request.META.get("REMOTE_ADDR", "")
    refused = pipeline.refusal(_publish, request.META.get(SECRET_META_KEY, ""), remote)
    if refused is not None:
        return reply(refused[1], status=refused[0])
    status, body = pipeline.answer(_publish, request.body, pipeline.NO_CALL, started=started)
    return reply(body, status=status)
