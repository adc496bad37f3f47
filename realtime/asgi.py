"""The ASGI application gunicorn serves (its `asgi` worker, on uvloop): the hot Centrifugo proxy
calls answered on the event loop (callbacks.fastpath), everything else by Django's WSGI handler
in the worker's thread pool (realtime.wsgi_bridge)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from realtime.config import BY_NAME

os.environ.setdefault("DJANGO_SETTINGS_MODULE", str(BY_NAME["DJANGO_SETTINGS_MODULE"].default))

django_application = get_wsgi_application()

from callbacks.fastpath import ProxyFastPath  # noqa: E402 - needs the configured Django above
from realtime.wsgi_bridge import WsgiInThreads  # noqa: E402

application = ProxyFastPath(WsgiInThreads(django_application))
