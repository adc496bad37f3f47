"""Production settings: no default for any secret (realtime.env raises at import), no short secret,
secure cookies, HSTS and the HTTPS redirect from the environment."""

from __future__ import annotations

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from realtime.env import env_bool, env_int
from realtime.settings.base import *  # noqa: F403
from realtime.settings.base import (
    CENTRIFUGO_API_KEY,
    CENTRIFUGO_PROXY_SECRET,
    CENTRIFUGO_TOKEN_HMAC_SECRET_KEY,
    DEBUG,
    GATEWAY_API_KEY,
    SECRET_KEY,
)

if DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be false with realtime.settings.production")

# A shared secret shorter than this can be brute-forced offline: the HMAC key from any one token
# it signed, the others from a captured request. 32 characters is the RFC 7518 §3.2 minimum for an
# HS256 key (at least the hash output, 256 bits); the same floor serves the proxy secret and API keys.
MIN_SECRET_LENGTH = 32


def _secret_length_check(name: str, value: str | None, minimum: int = MIN_SECRET_LENGTH) -> None:
    if value and len(value) < minimum:
        raise ImproperlyConfigured(
            f"{name} is {len(value)} characters; production needs at least {minimum}"
            " (generate one: python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )


_secret_length_check("CENTRIFUGO_TOKEN_HMAC_SECRET_KEY", CENTRIFUGO_TOKEN_HMAC_SECRET_KEY)
_secret_length_check("CENTRIFUGO_PROXY_SECRET", CENTRIFUGO_PROXY_SECRET)
_secret_length_check("CENTRIFUGO_API_KEY", CENTRIFUGO_API_KEY)
_secret_length_check("GATEWAY_API_KEY", GATEWAY_API_KEY)
# Django's own rule (check --deploy, security.W009), enforced instead of warned about.
_secret_length_check("DJANGO_SECRET_KEY", SECRET_KEY, SECRET_KEY_MIN_LENGTH)
if len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX):
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY must have at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different characters"
        f" and not start with {SECRET_KEY_INSECURE_PREFIX!r}"
    )

# TLS is terminated in front of the gateway (nginx or a load balancer); tell Django so.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
# Off by default so a plain-http deployment (tests, the dev compose file) works; the README's
# production values turn it on. Centrifugo, health checks, Prometheus and backends call these paths
# over plain HTTP inside the deployment, so they are never redirected.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^centrifugo/", r"^api/", r"^health$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
