from __future__ import annotations

import json
import logging

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from callbacks.tests.conftest import BASE
from realtime.observability import JsonFormatter, RequestIdFilter

pytestmark = pytest.mark.django_db


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_callbacks_are_counted_by_kind_and_outcome(client: Client, settings: object, redis_url: str) -> None:
    headers = {"X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET}  # type: ignore[attr-defined]
    before = {
        o: sample("gateway_callbacks_total", kind="subscribe", outcome=o) for o in ("result", "error", "unauthorized")
    }
    writes = sample("gateway_stream_writes_total", result="ok")
    for channel in ("chat:1", "secret:1"):
        body = json.dumps({**BASE, "user": "42", "channel": channel})
        client.post("/centrifugo/subscribe", body, content_type="application/json", headers=headers)
    client.post("/centrifugo/subscribe", "{}", content_type="application/json")
    client.post("/centrifugo/publish", json.dumps({**BASE, "user": "42", "channel": "chat:1", "data": 1}),
                content_type="application/json", headers=headers)  # fmt: skip
    after = {o: sample("gateway_callbacks_total", kind="subscribe", outcome=o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {"result": 1, "error": 1, "unauthorized": 1}
    assert sample("gateway_stream_writes_total", result="ok") == writes + 1
    assert sample("gateway_callback_seconds_count", kind="subscribe") >= 3

    text = client.get("/metrics").content.decode()
    assert 'gateway_callbacks_total{kind="subscribe",outcome="error"}' in text
    assert "gateway_rules_version" in text


def test_log_lines_are_json_with_the_request_id(
    client: Client, caplog: pytest.LogCaptureFixture, settings: object
) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    caplog.handler.setFormatter(JsonFormatter())
    headers = {"X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET, "X-Request-Id": "req-abc"}  # type: ignore[attr-defined]
    with caplog.at_level(logging.INFO, logger="callbacks"):
        response = client.post("/centrifugo/subscribe", json.dumps({**BASE, "user": "", "channel": "chat:1"}),
                               content_type="application/json", headers=headers)  # fmt: skip
    assert response["X-Request-Id"] == "req-abc"
    [line] = [json.loads(line) for line in caplog.text.splitlines() if "subscribe denied" in line]
    assert line["request_id"] == "req-abc"
    assert line["level"] == "info"
    assert line["logger"] == "callbacks"
    assert line["ts"].endswith("Z")


def test_a_request_without_an_id_gets_one_only_when_it_logs(
    client: Client, settings: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    headers = {"X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET}  # type: ignore[attr-defined]
    quiet = client.post("/centrifugo/subscribe", json.dumps({**BASE, "user": "42", "channel": "chat:1"}),
                        content_type="application/json", headers=headers)  # fmt: skip
    assert "X-Request-Id" not in quiet
    with caplog.at_level(logging.INFO, logger="callbacks"):
        denied = client.post("/centrifugo/subscribe", json.dumps({**BASE, "user": "", "channel": "chat:1"}),
                             content_type="application/json", headers=headers)  # fmt: skip
    assert len(denied["X-Request-Id"]) == 16
    assert caplog.records[-1].request_id == denied["X-Request-Id"]  # type: ignore[attr-defined]
