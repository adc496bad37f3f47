"""GET /health: 200 when the database and Redis both answer, 503 naming what does not (for Redis,
down to the node: realtime.redis_health)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from callbacks.protocol import encode
from realtime.redis import REDIS_ERRORS, location
from realtime.redis_health import RedisDown, check_redis

_FAILURES: tuple[type[Exception], ...] = (DatabaseError, *REDIS_ERRORS)


def _check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {}


@require_GET
def health(request: HttpRequest) -> HttpResponse:
    checks: dict[str, dict[str, object]] = {}
    redis_where = {"kind": location().kind, "where": location().where}  # never credentials
    runs: tuple[tuple[str, Callable[[], dict[str, Any]], dict[str, Any]], ...] = (
        ("database", _check_database, {}),
        ("redis", check_redis, redis_where),
    )
    for name, check, about in runs:
        started = time.perf_counter()
        try:
            detail = check()
        except RedisDown as exc:
            checks[name] = {"ok": False, "error": str(exc), **about, **exc.detail}
        except _FAILURES as exc:
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}", **about}
        else:
            checks[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2), **about, **detail}
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": checks}
    return HttpResponse(encode(body), content_type="application/json", status=503 if failing else 200)
