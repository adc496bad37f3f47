"""Plain Django over WSGI with the bench routes (the tuning's gthread "before" variant)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.gateway.settings")
application = get_wsgi_application()
