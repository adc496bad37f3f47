"""Helpers to call the callback views the way Centrifugo does: POST, JSON, the secret header."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from partitions.store import rules_store
from tests.support.asgi import asgi_request, in_test_thread

CLIENT_ID = "9336a229-2400-4ebc-8c50-0a643d22e8a0"
BASE = {"client": CLIENT_ID, "transport": "websocket", "protocol": "json", "encoding": "json"}

Call = Callable[..., tuple[int, dict[str, Any]]]


# The clock the subscribe/sub_refresh answers read (their expire_at), fixed so answers compare
# exactly and the DRF and ASGI answers match byte for byte across a second boundary.
NOW = 1_800_000_000


@pytest.fixture(autouse=True)
def _fresh_rules() -> None:
    # Each test's database starts from the migrations' default rules: forget any cached set.
    rules_store.invalidate()


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("callbacks.handlers._unix_now", lambda: NOW)


@pytest.fixture(params=["drf", "asgi"])
def call(request: pytest.FixtureRequest, client: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[Call]:
    """Every callback test runs twice: through Django's test client to the DRF views (the blocking
    handlers), and through the shipped ASGI application (realtime.asgi: the event-loop fast path,
    its Redis client, and the WSGI bridge for connect) — both must answer alike."""
    transport = request.param

    def _call(kind: str, body: dict[str, Any] | bytes, *, secret: str | None = None) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, bytes) else json.dumps({**BASE, **body}).encode()
        headers = {"X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET if secret is None else secret}
        if transport == "drf":
            response = client.post(f"/centrifugo/{kind}", data=raw, content_type="application/json", headers=headers)
            return response.status_code, json.loads(response.content)
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(raw))
        if client.cookies:  # a session the test logged in with client.force_login()
            headers["Cookie"] = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
        rules_store.current()  # what the worker's preload and watcher do, outside the event loop
        answer = asgi_request(f"/centrifugo/{kind}", raw, headers=headers)
        return answer.status, json.loads(answer.body)

    if transport == "asgi":
        with in_test_thread(monkeypatch):
            yield _call
    else:
        yield _call
