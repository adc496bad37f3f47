"""The declared settings (realtime.config) for Django: each reader raises ImproperlyConfigured naming
the variable, so a misconfigured deployment fails at start-up with a message an operator can act
on, not with a stack trace from deep inside a request.

`setting_*` read a declared setting (type, default, limits from realtime/config.py); `env_*` read an
undeclared name with the same rules (used by the bench's settings and the tests).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from realtime import config

T = TypeVar("T")


def _django(read: Callable[[], T]) -> T:
    try:
        return read()
    except config.ConfigError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def _declared(name: str, kind: type[T]) -> T | None:
    value = _django(lambda: config.read(name))
    assert value is None or isinstance(value, kind), f"{name} is declared as {config.BY_NAME[name].kind}"
    return value


def setting_str(name: str, fallback: str | None = None) -> str:
    """A declared text (or choice) setting; `fallback` when it has no default and is unset."""
    value = _declared(name, str)
    if value is None:
        if fallback is None:
            raise ImproperlyConfigured(f"{name} must be set in the environment")
        return fallback
    return value


def setting_optional_str(name: str) -> str | None:
    """A declared text setting whose empty value means "not set" (an optional secret, an audience)."""
    return _declared(name, str) or None


def setting_int(name: str, fallback: int | None = None, *, at_least: int | None = None) -> int:
    """A declared integer; `at_least`: a floor that depends on other settings (checked alike)."""
    value = _declared(name, int)
    if value is None:
        if fallback is None:
            raise ImproperlyConfigured(f"{name} must be set in the environment")
        value = fallback
    if at_least is not None and value < at_least:
        raise ImproperlyConfigured(f"{name} must be >= {at_least}, not {value}")
    return value


def setting_float(name: str) -> float:
    value = _declared(name, float)
    assert value is not None, f"{name} has a default"
    return value


def setting_bool(name: str) -> bool:
    value = _declared(name, bool)
    assert value is not None, f"{name} has a default"
    return value


def setting_list(name: str) -> list[str]:
    value = _declared(name, list)
    return list(value or [])


def env_str(name: str, default: str | None = None) -> str:
    return _django(lambda: config.text(name, default, secret=False))


def env_secret(name: str, default: str | None = None) -> str:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/Kubernetes secrets), never both.

    Both set is refused rather than resolved: docker/entrypoint.sh and scripts/run-gateway.sh apply the
    same rule (docker/secret-files.sh), so Centrifugo and Django can never pick different secrets.
    """
    return _django(lambda: config.text(name, default, secret=True))


def env_bool(name: str, default: bool) -> bool:
    value = config.raw(name, secret=False)
    return default if value is None else _django(lambda: config.parse_bool(name, value))


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = config.raw(name, secret=False)
    return _django(
        lambda: config.parse_int(name, str(default) if value is None else value, minimum=minimum, maximum=maximum)
    )


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
