from __future__ import annotations

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_health_is_ok_when_database_and_redis_answer(client: Client, redis_url: str) -> None:
    response = client.get("/health")
    body = json.loads(response.content)
    assert (response.status_code, body["status"], body["failing"]) == (200, "ok", [])


def test_health_names_redis_when_it_is_down(client: Client, settings: object) -> None:
    from realtime.redis import reset_redis
    from tests.support.procs import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # type: ignore[attr-defined]
    reset_redis()
    try:
        response = client.get("/health")
    finally:
        reset_redis()
    body = json.loads(response.content)
    assert (response.status_code, body["failing"]) == (503, ["redis"])
    assert body["checks"]["database"]["ok"] is True
    assert "ConnectionError" in body["checks"]["redis"]["error"]
