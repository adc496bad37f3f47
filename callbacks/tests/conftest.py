"""Helpers to call the callback views the way Centrifugo does: POST, JSON, the secret header."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from partitions.store import rules_store

CLIENT_ID = "9336a229-2400-4ebc-8c50-0a643d22e8a0"
BASE = {"client": CLIENT_ID, "transport": "websocket", "protocol": "json", "encoding": "json"}

Call = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture(autouse=True)
def _fresh_rules() -> None:
    # Each test's database starts from the migrations' default rules: forget any cached set.
    rules_store.invalidate()


@pytest.fixture
def call(client: Client) -> Call:
    def _call(
        kind: str, body: dict[str, Any] | bytes, *, secret: str | None = None, **extra: Any
    ) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, bytes) else json.dumps({**BASE, **body}).encode()
        headers = {"X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET if secret is None else secret}
        response = client.post(
            f"/centrifugo/{kind}", data=raw, content_type="application/json", headers=headers, **extra
        )
        return response.status_code, json.loads(response.content)

    return _call
