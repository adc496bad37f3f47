"""Plain Django over WSGI, for tools that expect it. What ships is `realtime.asgi` under gunicorn's
asyncio worker: the hot proxy calls have an event-loop fast path there (callbacks.fastpath)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from realtime.config import BY_NAME

os.environ.setdefault("DJANGO_SETTINGS_MODULE", str(BY_NAME["DJANGO_SETTINGS_MODULE"].default))

application = get_wsgi_application()
