"""The WSGI application gunicorn serves: Django, with the hot Centrifugo proxy calls answered in
front of its request cycle by the same handlers (see callbacks.fastpath for why and how much)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime.settings.local")

django_application = get_wsgi_application()

from callbacks.fastpath import ProxyFastPath  # noqa: E402 - needs the configured Django above

application = ProxyFastPath(django_application)
