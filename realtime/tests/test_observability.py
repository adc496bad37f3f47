from __future__ import annotations

import json
import logging
import time

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


def test_stream_writes_counted_on_the_event_loop_reach_the_metric_within_the_flush_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from realtime import observability

    monkeypatch.setattr(observability, "METRICS_FLUSH_SECONDS", 0.05)
    observability.flush_metrics()  # counts other tests' loops left behind
    before = sample("gateway_stream_writes_total", result="ok")

    async def publishes() -> tuple[float, float]:
        for _ in range(5):
            observability.count_stream_write("ok")
        right_after = sample("gateway_stream_writes_total", result="ok")
        await asyncio.sleep(0.2)
        return right_after, sample("gateway_stream_writes_total", result="ok")

    right_after, later = asyncio.run(publishes())
    assert (right_after - before, later - before) == (0, 5)


def test_the_workers_shutdown_flushes_counts_and_closes_its_redis_connection(redis_url: str) -> None:
    import asyncio

    from realtime import observability, redis_async
    from realtime.asgi import application

    observability.flush_metrics()  # counts other tests' loops left behind
    before = sample("gateway_stream_writes_total", result="duplicate")

    async def lifespan() -> tuple[list[str], bool]:
        client = redis_async.get_async_redis()
        await client.execute("PING")
        observability.count_stream_write("duplicate")
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[str] = []

        async def receive() -> dict[str, str]:
            return inbox.pop(0)

        async def send(message: dict[str, str]) -> None:
            sent.append(message["type"])

        await application({"type": "lifespan"}, receive, send)
        return sent, client._connection is None

    sent, closed = asyncio.run(lifespan())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert closed
    assert sample("gateway_stream_writes_total", result="duplicate") == before + 1


def test_counts_left_by_a_loop_that_ended_are_flushed_by_the_next_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from realtime import observability

    monkeypatch.setattr(observability, "METRICS_FLUSH_SECONDS", 0.05)
    observability.flush_metrics()
    before = sample("gateway_stream_writes_total", result="ok")

    async def count(then_wait: float) -> None:
        observability.count_stream_write("ok")
        await asyncio.sleep(then_wait)

    asyncio.run(count(0))  # ends before its flush
    asyncio.run(count(0.2))
    assert sample("gateway_stream_writes_total", result="ok") - before == 2


def test_callbacks_observed_on_the_loop_add_up_exactly_as_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batched histogram (its cells written once a second) against prometheus_client's own
    observe(), for the same timings: same counts per bucket, same sum."""
    import asyncio

    from realtime import observability

    monkeypatch.setattr(observability, "METRICS_FLUSH_SECONDS", 0.05)
    observability.flush_metrics()
    timings = [0.0001, 0.0005, 0.0007, 0.003, 0.003, 0.2, 5.0]  # on bounds, between, beyond the last

    def snapshot(kind: str) -> dict[str, float]:
        bounds = ["0.0005", "0.001", "0.004", "0.256", "1.0", "+Inf"]
        samples = {le: sample("gateway_callback_seconds_bucket", kind=kind, le=le) for le in bounds}
        samples["sum"] = round(sample("gateway_callback_seconds_sum", kind=kind), 9)
        samples["calls"] = sample("gateway_callbacks_total", kind=kind, outcome="result")
        return samples

    # One fixed clock reading for both paths: the same durations to the bit, whatever the machine's load.
    now = time.perf_counter()
    for elapsed in timings:  # no loop: written at once, the reference
        observability.observe_callback("ref", now - elapsed, b'{"result":{}}', 200, now=now)

    async def on_the_loop() -> None:
        for elapsed in timings:
            observability.observe_callback("batched", now - elapsed, b'{"result":{}}', 200, now=now)
        assert snapshot("batched")["calls"] == 0  # not yet written
        await asyncio.sleep(0.2)

    asyncio.run(on_the_loop())
    reference, batched = snapshot("ref"), snapshot("batched")
    assert batched["calls"] == reference["calls"] == len(timings)
    assert {k: v for k, v in batched.items() if k != "sum"} == {k: v for k, v in reference.items() if k != "sum"}
    assert batched["sum"] == pytest.approx(reference["sum"], abs=1e-9)
