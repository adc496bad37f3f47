"""The project's URLconf plus what the README's "Adding or overriding a callback" shows: a new
proxy kind (one handler, one routing line) and the rpc callback overridden by a handler of ours,
as a DRF view class."""

from __future__ import annotations

import time

from django.urls import include, path

from callbacks import protocol
from callbacks.handlers import RpcHandler
from callbacks.pipeline import Call, Handler
from callbacks.protocol import Reply, RpcRequest, UserRequest
from callbacks.urls import proxy
from callbacks.views import CentrifugoProxyView
from realtime.urls import urlpatterns as project_urlpatterns


class EchoRequest(UserRequest, kw_only=True):
    word: str


class EchoHandler(Handler[EchoRequest]):
    """A new proxy kind: answers the word it got, with the user that sent it."""

    kind = "echo"
    request_type = EchoRequest

    def handle(self, payload: EchoRequest, call: Call) -> Reply:
        return protocol.result({"word": payload.word, "user": payload.user})


class ServerTimeRpc(Handler[RpcRequest]):
    """The README's custom RPC method: `server_time` answered here, every other method as shipped."""

    kind = "rpc"
    request_type = RpcRequest
    blocking = True  # the shipped methods read the streams through redis-py
    shipped = RpcHandler()

    def handle(self, payload: RpcRequest, call: Call) -> Reply:
        if payload.method == "server_time":
            return protocol.result({"data": {"unix": int(time.time())}})
        return self.shipped.handle(payload, call)


class ServerTimeView(CentrifugoProxyView):
    """The same override written as a DRF view class."""

    handler = ServerTimeRpc()


urlpatterns = [
    path("centrifugo/", include([proxy(EchoHandler()), path("rpc", ServerTimeView.as_view())])),
    *project_urlpatterns,
]
