"""The callback service's gunicorn worker: uvicorn-worker's `UvicornWorker` (uvicorn on uvloop, with
the httptools C parser), configured through its documented extension point, `CONFIG_KWARGS`.

Chosen over gunicorn's own `asgi` worker by measurement (bench/, `--targets ours,ours-uvicorn-worker`,
README Performance) and because it needs no gunicorn internals: on SIGTERM uvicorn closes idle
keep-alive connections at once (Centrifugo's Go client keeps up to 255 open per node; the stock
asgi worker waited out the graceful timeout for each) and lets requests in flight finish, up to
GUNICORN_GRACEFUL_TIMEOUT, after which the arbiter kills the worker. A body refused before it was
read (realtime.request_body) is discarded as it arrives: uvicorn buffers at most 64 KB of a body
the app has not asked for (flow control), and nothing once the answer is sent.
tests/e2e/test_callback_worker.py and test_ingress.py check both against the real server.
"""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]


class CallbackWorker(UvicornWorker):
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",  # realtime.asgi answers it: the worker's Redis connection closes on shutdown
        "server_header": False,  # the callback port is internal: no need to name the server
        # The client address stays the TCP peer: realtime.client_ip alone decides whom to believe
        # about X-Forwarded-For (TRUSTED_PROXIES), and Django reads X-Forwarded-Proto itself
        # (SECURE_PROXY_SSL_HEADER). uvicorn would otherwise rewrite both for peers in gunicorn's
        # forwarded_allow_ips (127.0.0.1 by default).
        "proxy_headers": False,
    }
