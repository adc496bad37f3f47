"""Settings shared by every environment. All configuration comes from the environment: each variable's
type, default and limits are declared once in realtime/config.py, read here through realtime.env."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from realtime import redis_url
from realtime.env import (
    database_from_url,
    setting_bool,
    setting_float,
    setting_int,
    setting_list,
    setting_optional_str,
    setting_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(setting_str("VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = setting_str("DJANGO_SECRET_KEY")
DEBUG = setting_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = setting_list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = setting_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",  # admin login throttling, see AXES_* below
    "rest_framework",
    "realtime",
    "partitions",
    "streams",
    "callbacks",
    "workers",
    "control",
]

MIDDLEWARE = [
    "realtime.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ (the admin's CSS and JS) from gunicorn; other paths pass straight through.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused for a lockout into the lockout page (one getattr on other requests;
    # the Centrifugo proxy calls never reach Django's middleware, see callbacks.fastpath).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "realtime.urls"
WSGI_APPLICATION = "realtime.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        "DATABASE_URL",
        setting_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        base_dir=BASE_DIR,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = setting_str("REDIS_URL")
try:
    # One server, Sentinel or Cluster (realtime.redis_url): every Redis client builds from this.
    REDIS_LOCATION = redis_url.parse(REDIS_URL)
except redis_url.RedisUrlError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# When a publish is acknowledged: "local" (the master has it) or "replicated" (WAIT for
# REDIS_ACK_REPLICAS replicas within the Redis deadline, else a temporary error).
REDIS_ACK = setting_str("REDIS_ACK")
REDIS_ACK_REPLICAS = setting_int("REDIS_ACK_REPLICAS")
# Fail fast: Centrifugo gives each proxy call 1 s, so a stalled Redis must surface as a temporary
# error well inside that budget instead of as a proxy timeout.
REDIS_SOCKET_TIMEOUT = setting_float("REDIS_SOCKET_TIMEOUT")
REDIS_KEY_PREFIX = setting_str("REDIS_KEY_PREFIX")
# Threads per callback worker for the work that blocks: Django's views (connect with a session,
# the server API, the admin), refresh (the session store) and the history RPC (redis-py);
# publish and subscribe never leave the event loop.
# Each thread may hold a database connection while it works: replicas x workers x threads must
# stay under PostgreSQL's max_connections (100 by default).
CALLBACK_THREADS = setting_int("CALLBACK_THREADS")

# --- Request bodies (realtime/request_body.py; README, "Input limits") -----------------------
# A proxy call carries one client command (Centrifugo's websocket message_size_limit: 64 KiB by
# default) in an envelope, as JSON or base64: 1 MiB leaves room for both.
CALLBACK_MAX_BODY = setting_int("CALLBACK_MAX_BODY")
SERVER_API_MAX_BODY = setting_int("SERVER_API_MAX_BODY")
# Everything else reaches Django (the admin's forms): Django's own default, stated here because
# the WSGI bridge reads bodies up to it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Bytes of request bodies one worker holds at once; a request that would pass it gets a 503.
BODY_BYTES_IN_FLIGHT = setting_int(
    "BODY_BYTES_IN_FLIGHT", at_least=max(CALLBACK_MAX_BODY, SERVER_API_MAX_BODY, DATA_UPLOAD_MAX_MEMORY_SIZE)
)

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        # A list: django-redis splits a string at commas into several servers.
        "LOCATION": [REDIS_URL],
        "KEY_PREFIX": f"{REDIS_KEY_PREFIX}:cache",
        "OPTIONS": {
            # One server, Sentinel or Cluster: the client realtime.redis builds from REDIS_URL.
            "CONNECTION_FACTORY": "realtime.cache.LocationConnectionFactory",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
        },
    }
}
# Sessions are read at connect time (cookie auth); the cache keeps that off the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Admin login throttling (django-axes) ------------------------------------------------------
# After ADMIN_LOGIN_FAILURE_LIMIT wrong passwords for one username from one client address, that pair
# is refused (429, even with the right password) for ADMIN_LOGIN_COOLOFF seconds, counted again from
# each further attempt. Per username *and* address: an attacker can neither guess on from one
# address nor lock an operator out from everywhere. Attempts live in the database (the admin's own
# database, shared by every replica); `manage.py axes_reset_username NAME` lifts a lockout at once.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = setting_int("ADMIN_LOGIN_FAILURE_LIMIT")
AXES_COOLOFF_TIME = timedelta(seconds=setting_int("ADMIN_LOGIN_COOLOFF"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "realtime/admin_locked_out.html"
AXES_CLIENT_IP_CALLABLE = "realtime.client_ip.client_ip"
# Peers whose X-Forwarded-For is believed (addresses or networks, e.g. nginx's): none by default, so
# the client is REMOTE_ADDR. Behind nginx, list it, or every client shares nginx's address.
try:
    TRUSTED_PROXIES = [ipaddress.ip_network(item, strict=False) for item in setting_list("TRUSTED_PROXIES")]
except ValueError as exc:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"TRUSTED_PROXIES must list IP addresses or networks: {exc}") from None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT: Path | None = Path(setting_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Without a collectstatic run (make run, tests) WhiteNoise serves straight from the apps' folders.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    # The callback views authenticate Centrifugo by a shared secret, not users; skipping DRF's
    # AnonymousUser construction keeps the hot path lean.
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}

# --- Centrifugo and the callbacks -------------------------------------------------------------
# HS256 key shared with Centrifugo (client.token.hmac_secret_key) for connection and subscription JWTs.
CENTRIFUGO_TOKEN_HMAC_SECRET_KEY = setting_str("CENTRIFUGO_TOKEN_HMAC_SECRET_KEY")
# Centrifugo sends this in a static header on every proxy call; nothing else may call the callbacks.
CENTRIFUGO_PROXY_SECRET = setting_str("CENTRIFUGO_PROXY_SECRET")
CENTRIFUGO_PROXY_SECRET_HEADER = "X-Centrifugo-Proxy-Secret"
# Key for Centrifugo's HTTP server API (server-side publishing): required, as for Centrifugo itself.
CENTRIFUGO_API_KEY = setting_str("CENTRIFUGO_API_KEY")


def _local_centrifugo_api_url() -> str:
    """The Centrifugo that centrifugo/run.sh starts next to the callbacks: on CENTRIFUGO_PORT, at the
    address it listens on (BIND_ADDRESS; over loopback when that is every address). Derived here, the
    one place every process reads it, so scripts/run-gateway.sh and the image cannot disagree."""
    host = setting_str("BIND_ADDRESS")
    if host in ("0.0.0.0", "::", "[::]"):  # noqa: S104 - the listen address, not a bind here
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{setting_int('CENTRIFUGO_PORT')}"


# Set it when Centrifugo runs elsewhere (GATEWAY_ROLE=callback, several nodes behind a balancer).
CENTRIFUGO_API_URL = setting_optional_str("CENTRIFUGO_API_URL") or _local_centrifugo_api_url()

ALLOW_ANONYMOUS = setting_bool("ALLOW_ANONYMOUS")
# Connections authenticated by a session cookie are re-checked this often (refresh proxy).
SESSION_CONNECTION_TTL = setting_int("SESSION_CONNECTION_TTL")
# Token connections are re-checked against revocations and bans this often (refresh proxy).
TOKEN_RECHECK_INTERVAL = setting_int("TOKEN_RECHECK_INTERVAL")
# issue_connection_token's default: tokens only the connect proxy accepts (callbacks.tokens).
TOKEN_PROXY_ONLY = setting_bool("TOKEN_PROXY_ONLY")
# Optional audience/issuer that connect-data tokens must carry.
TOKEN_AUDIENCE = setting_optional_str("TOKEN_AUDIENCE")
TOKEN_ISSUER = setting_optional_str("TOKEN_ISSUER")

# --- Streams ------------------------------------------------------------------------------
STREAM_DEFAULT_PARTITIONS = setting_int("STREAM_DEFAULT_PARTITIONS")
STREAM_DEFAULT_MAXLEN = setting_int("STREAM_DEFAULT_MAXLEN")

# --- Rules -------------------------------------------------------------------------------
# How often each process looks for a newer rule set (one indexed query, off the request path).
RULES_POLL_INTERVAL = setting_float("RULES_POLL_INTERVAL")
RULES_WATCH = setting_bool("RULES_WATCH")
# Live subscriptions are re-checked against the rules this often (seconds), so a rule change ends
# those it no longer allows: subscribe answers carry an expire_at 1-2 s ahead, and centrifugo/run.sh
# sets Centrifugo's presence tick (which calls sub_refresh once that is past) to this interval.
# Each subscription then costs one sub_refresh call per interval (README, operator guide).
# 0: off (no expire_at; a revoked subscriber keeps its subscription until it leaves). The same
# variable must reach Centrifugo's run.sh, which validates it alike.
SUBSCRIPTION_RECHECK_INTERVAL = setting_int("SUBSCRIPTION_RECHECK_INTERVAL")

# --- Backend workers ---------------------------------------------------------------------
# Join/leave entries (streams.joinleave): a member whose sub_refresh heartbeat is this late is
# gone; each callback worker's reaper looks every JOIN_LEAVE_REAP_INTERVAL seconds (0: none here).
JOIN_LEAVE_GRACE = setting_float("JOIN_LEAVE_GRACE")
JOIN_LEAVE_REAP_INTERVAL = setting_float("JOIN_LEAVE_REAP_INTERVAL")

# --- Operator controls: the live view and the message-log plot ---------------------------
# None: derived per request from the admin's host and CENTRIFUGO_PORT (control.liveview).
LIVE_VIEW_WEBSOCKET_URL = setting_optional_str("LIVE_VIEW_WEBSOCKET_URL")
LIVE_VIEW_TOKEN_TTL = setting_int("LIVE_VIEW_TOKEN_TTL")
CENTRIFUGO_PORT = setting_int("CENTRIFUGO_PORT")
# streams.throughput: each callback worker offers to sample this often; one per interval does.
THROUGHPUT_SAMPLE_INTERVAL = setting_int("THROUGHPUT_SAMPLE_INTERVAL")

LOG_LEVEL = setting_str("LOG_LEVEL").upper()
# json: one object per line with a request id (for log shippers); plain: for a terminal.
LOG_FORMAT = setting_str("LOG_FORMAT")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "realtime.observability.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "realtime.observability.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # axes.apps logs a banner at every start (each manage.py command too); lockouts stay logged (axes.handlers).
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes.apps": {"level": "WARNING"}},
}

# A publish retried with the same idempotency key within this many seconds is stored once.
IDEMPOTENCY_WINDOW = setting_int("IDEMPOTENCY_WINDOW")

# --- Server API (POST /api/publish) ---------------------------------------------------------
# Backends publish with `Authorization: Api-Key <key>`. Unset: the endpoint refuses every call.
GATEWAY_API_KEY = setting_optional_str("GATEWAY_API_KEY")
# Who a server publication is, for the rules: grant this user or role publish access.
SERVER_API_USER = setting_str("SERVER_API_USER")
SERVER_API_ROLES = setting_list("SERVER_API_ROLES")

# --- Backend workers (manage.py run_worker, the workers app) --------------------------------
WORKER_LEASE_SECONDS = setting_float("WORKER_LEASE_SECONDS")
WORKER_MAX_DELIVERIES = setting_int("WORKER_MAX_DELIVERIES")
WORKER_METRICS_PORT = setting_int("WORKER_METRICS_PORT")
WORKER_CHANNEL_IDLE_SECONDS = setting_float("WORKER_CHANNEL_IDLE_SECONDS")
