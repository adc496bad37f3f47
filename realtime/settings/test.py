"""Settings for pytest: fixed test secrets, an in-memory database, no background rule watcher."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-django-secret-key-not-for-production-use")
os.environ.setdefault(
    "CENTRIFUGO_TOKEN_HMAC_SECRET_KEY", "test-hmac-secret-key-0123456789abcdef-0123456789abcdef-0123456789"
)
os.environ.setdefault("CENTRIFUGO_PROXY_SECRET", "test-proxy-secret-0123456789abcdef")
os.environ.setdefault("CENTRIFUGO_API_KEY", "test-api-key")
os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")
os.environ.setdefault("RULES_WATCH", "false")

from realtime.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The Redis server for tests is started per run on a free port (conftest.redis_url points the
# stream writer at it); Django's cache stays in-process here. The end-to-end tests run the real
# production settings, with the Redis cache, through gunicorn.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Static files come from the apps' folders (WHITENOISE_USE_FINDERS); there is no collectstatic output.
STATIC_ROOT = None
