"""GET /health: 200 when the database and Redis both answer, 503 naming what does not."""

from __future__ import annotations

import time

import redis
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from callbacks.protocol import encode
from realtime.redis import get_redis


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    get_redis().ping()


@require_GET
def health(request: HttpRequest) -> HttpResponse:
    checks: dict[str, dict[str, object]] = {}
    for name, check, errors in (
        ("database", _check_database, (DatabaseError,)),
        ("redis", _check_redis, (redis.RedisError,)),
    ):
        started = time.perf_counter()
        try:
            check()
        except errors as exc:
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        else:
            checks[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": checks}
    return HttpResponse(encode(body), content_type="application/json", status=503 if failing else 200)
