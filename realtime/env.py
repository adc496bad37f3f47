"""Strict readers for configuration that comes from the environment.

Every reader names the variable in its error, so a misconfigured deployment fails at start-up with
a message an operator can act on, not with a stack trace from deep inside a request.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_MISSING = object()


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise ImproperlyConfigured(f"{name} must be set in the environment")
        return default
    return value


def env_secret(name: str, default: str | None = None) -> str:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/Kubernetes secrets), never both.

    Both set is refused rather than resolved: docker/entrypoint.sh and scripts/run-gateway.sh apply the
    same rule (docker/secret-files.sh), so Centrifugo and Django can never pick different secrets.
    """
    path = os.environ.get(f"{name}_FILE")
    if path:
        if os.environ.get(name):
            raise ImproperlyConfigured(f"{name} and {name}_FILE are both set: set only one of them")
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
        if not value:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} is empty")
        return value
    return env_str(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ImproperlyConfigured(f"{name} must be 'true' or 'false', not {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        result = default
    else:
        try:
            result = int(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None
    if minimum is not None and result < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, not {result}")
    if maximum is not None and result > maximum:
        raise ImproperlyConfigured(f"{name} must be <= {maximum}, not {result}")
    return result


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        result = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
    if result < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, not {result}")
    return result


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def database_from_url(name: str, url: str, *, base_dir: Path) -> dict[str, object]:
    """Django DATABASES['default'] from a postgres:// or sqlite:/// URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.query:
            # Dropping them silently is how `?sslmode=require` once went unnoticed; SQLite takes none.
            raise ImproperlyConfigured(f"{name}: a sqlite:/// URL takes no query parameters, not {parts.query!r}")
        # sqlite:///relative/path or sqlite:////absolute/path
        raw = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
        if not raw:
            raise ImproperlyConfigured(f"{name}={url!r} names no SQLite file")
        if raw == ":memory:":
            return {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
        path = Path(raw)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path if path.is_absolute() else base_dir / path,
        }
    if parts.scheme in ("postgres", "postgresql"):
        if not parts.path.strip("/"):
            raise ImproperlyConfigured(f"{name}={url!r} names no database")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            # Persistent connections: the admin and rule reloads reuse them.
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            # ?sslmode=require&connect_timeout=5&application_name=gateway: handed to psycopg (libpq).
            "OPTIONS": _postgres_options(name, parts.query),
        }
    raise ImproperlyConfigured(f"{name} must be a sqlite:/// or postgres:// URL, not {url!r}")


_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _postgres_options(name: str, query: str) -> dict[str, str]:
    """A postgres:// URL's query parameters as libpq connection parameters (Django's OPTIONS).

    Checked here, at start-up, against the keywords this libpq knows: a misspelt `sslmod=require`
    would otherwise be refused only at the first query, and a wrong `sslmode` value would be too.
    """
    if not query:
        return {}
    from psycopg import pq  # only for a postgres:// URL; SQLite deployments need no psycopg

    known = {option.keyword.decode() for option in pq.Conninfo.get_defaults()}
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in known:
            raise ImproperlyConfigured(
                f"{name}: {key!r} is not a PostgreSQL connection parameter (libpq's, e.g. sslmode, "
                "connect_timeout, application_name: https://www.postgresql.org/docs/current/libpq-connect.html)"
            )
        if key in options:
            raise ImproperlyConfigured(f"{name}: {key!r} is given twice")
        if key == "sslmode" and value not in _SSLMODES:
            raise ImproperlyConfigured(f"{name}: sslmode must be one of {', '.join(_SSLMODES)}, not {value!r}")
        options[key] = value
    return options
