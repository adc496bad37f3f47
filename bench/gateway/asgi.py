"""The gateway's ASGI application with the bench-only no-op publish on the same fast path as
/centrifugo/publish, so the two differ only by the stream write."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.gateway.settings")
django_application = get_wsgi_application()

from callbacks.fastpath import ProxyFastPath  # noqa: E402
from realtime.wsgi_bridge import WsgiInThreads  # noqa: E402

application = ProxyFastPath(WsgiInThreads(django_application))  # with /centrifugo/publish-noop: bench/gateway/urls.py
