"""Production settings: no default for any secret (realtime.env raises at import), secure cookies."""

from __future__ import annotations

from realtime.env import env_bool, env_int
from realtime.settings.base import *  # noqa: F403
from realtime.settings.base import DEBUG

if DEBUG:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DJANGO_DEBUG must be false with realtime.settings.production")

# TLS is terminated in front of the gateway (nginx or a load balancer); tell Django so.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_CONTENT_TYPE_NOSNIFF = True
