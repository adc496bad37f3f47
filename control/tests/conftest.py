"""A stand-in for Centrifugo's server API that records what it was asked, and a closed port for
when it is down."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from partitions.store import rules_store


class FakeCentrifugo:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answer: dict[str, Any] = {"result": {}}

    def __call__(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((method, body))
        return self.answer


@pytest.fixture
def centrifugo(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FakeCentrifugo:
    fake = FakeCentrifugo()
    monkeypatch.setattr("control.services.centrifugo_call", fake)
    settings.RULES_POLL_INTERVAL = 0.05  # the ban's second sweep waits twice this
    return fake


@pytest.fixture
def centrifugo_down(settings: Any) -> str:
    """CENTRIFUGO_API_URL on a loopback port nothing listens on (a real refused connection)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CENTRIFUGO_API_URL = f"http://127.0.0.1:{port}"
    settings.RULES_POLL_INTERVAL = 0.05
    return settings.CENTRIFUGO_API_URL


@pytest.fixture(autouse=True)
def _fresh_rules() -> None:
    rules_store.invalidate()
