"""Production settings: no default for any secret (realtime.env raises at import), no short secret,
secure cookies, HSTS and the HTTPS redirect from the environment."""

from __future__ import annotations

from django.core.checks.security.base import SECRET_KEY_INSECURE_PREFIX, SECRET_KEY_MIN_UNIQUE_CHARACTERS
from django.core.exceptions import ImproperlyConfigured

from realtime import config
from realtime.env import setting_bool, setting_int
from realtime.settings.base import *  # noqa: F403
from realtime.settings.base import DEBUG, SECRET_KEY

if DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be false with realtime.settings.production")

# A shared secret shorter than its declared min_length (realtime/config.py) can be brute-forced
# offline: the HMAC key from any one token it signed, the others from a captured request.
# DJANGO_SECRET_KEY's 50 is Django's own SECRET_KEY_MIN_LENGTH (check --deploy, security.W009).
for _setting in config.SETTINGS:
    if _setting.secret and _setting.min_length:
        try:
            config.check_secret_length(_setting.name, config.raw(_setting.name))
        except config.ConfigError as exc:
            raise ImproperlyConfigured(str(exc)) from None
# The rest of Django's W009 rule, enforced instead of warned about.
if len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX):
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY must have at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different characters"
        f" and not start with {SECRET_KEY_INSECURE_PREFIX!r}"
    )

# TLS is terminated in front of the gateway (nginx or a load balancer); tell Django so.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = setting_bool("SESSION_COOKIE_SECURE")
CSRF_COOKIE_SECURE = setting_bool("CSRF_COOKIE_SECURE")
# Off by default so a plain-http deployment (tests, the dev compose file) works; the README's
# production values turn it on. Centrifugo, health checks, Prometheus and backends call these paths
# over plain HTTP inside the deployment, so they are never redirected.
SECURE_SSL_REDIRECT = setting_bool("SECURE_SSL_REDIRECT")
SECURE_REDIRECT_EXEMPT = [r"^centrifugo/", r"^api/", r"^health$", r"^metrics$"]
SECURE_HSTS_SECONDS = setting_int("SECURE_HSTS_SECONDS")
SECURE_HSTS_INCLUDE_SUBDOMAINS = setting_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = setting_bool("SECURE_HSTS_PRELOAD")
SECURE_CONTENT_TYPE_NOSNIFF = True
