"""The callbacks as deployed (gunicorn, production settings): only Centrifugo may call them."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import redis

from realtime.observability import METRICS_FLUSH_SECONDS
from tests.support.gateway import SECRETS, Gateway
from tests.support.procs import wait_for

pytestmark = pytest.mark.e2e

BODY = {"client": "c1", "transport": "websocket", "protocol": "json", "encoding": "json", "user": "42",
        "channel": "chat:guard", "data": {"text": "hi"}}  # fmt: skip


def post(gateway: Gateway, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(f"{gateway.callback_url}{path}", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def stream_entries(gateway: Gateway) -> int:
    store = redis.Redis.from_url(gateway.redis_url)
    return sum(store.xlen(key) for key in store.scan_iter("rtgw:stream:*"))


def test_without_the_secret_a_callback_gets_401_and_stores_nothing(gateway: Gateway) -> None:
    before = stream_entries(gateway)
    status, body = post(gateway, "/centrifugo/publish", json.dumps(BODY).encode(), {})
    assert (status, body) == (401, {"error": {"code": 107, "message": "missing or wrong proxy secret"}})
    status, _ = post(gateway, "/centrifugo/publish", json.dumps(BODY).encode(), {"X-Centrifugo-Proxy-Secret": "guess"})
    assert status == 401
    assert stream_entries(gateway) == before


def test_malformed_json_gets_107_and_stores_nothing(gateway: Gateway) -> None:
    before = stream_entries(gateway)
    secret = {"X-Centrifugo-Proxy-Secret": SECRETS["CENTRIFUGO_PROXY_SECRET"]}
    status, body = post(gateway, "/centrifugo/publish", b'{"channel": "chat:guard", "data": {', secret)
    assert status == 200  # the protocol's error, which Centrifugo hands to the client as it is
    assert body["error"]["code"] == 107  # type: ignore[index]
    assert stream_entries(gateway) == before


def test_with_the_secret_the_same_publish_is_stored(gateway: Gateway) -> None:
    """The control for the two tests above: the request they send is otherwise a good one."""
    before = stream_entries(gateway)
    status, body = post(
        gateway,
        "/centrifugo/publish",
        json.dumps(BODY).encode(),
        {"X-Centrifugo-Proxy-Secret": SECRETS["CENTRIFUGO_PROXY_SECRET"]},
    )
    assert status == 200
    assert "stream_id" in body["result"]["tags"]  # type: ignore[index]
    assert stream_entries(gateway) == before + 1


def callback_counts(gateway: Gateway) -> dict[str, float]:
    with urllib.request.urlopen(f"{gateway.callback_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gateway_callbacks_total{")
    }


def settled_counts(gateway: Gateway) -> dict[str, float]:
    """The counts once they stop moving: two readings a flush interval apart (and then some) agree.
    Waits for the condition, however slow a loaded machine makes the workers' once-a-second flush."""
    readings = [callback_counts(gateway)]

    def settled() -> bool:
        time.sleep(METRICS_FLUSH_SECONDS * 1.5)
        readings.append(callback_counts(gateway))
        return readings[-1] == readings[-2]

    wait_for(settled, timeout=30, what="the metric counts to settle")
    return readings[-1]


def test_metrics_add_up_every_worker(gateway: Gateway) -> None:
    """/metrics of the gunicorn service sums its workers: every call below is counted once,
    whichever worker answered it."""
    before = settled_counts(gateway)  # earlier tests' calls reach the metric files a flush later
    secret = {"X-Centrifugo-Proxy-Secret": SECRETS["CENTRIFUGO_PROXY_SECRET"]}
    for _ in range(6):
        post(gateway, "/centrifugo/publish", json.dumps(BODY).encode(), secret)
    for _ in range(3):
        post(gateway, "/centrifugo/publish", json.dumps(BODY).encode(), {})
    expected = {'kind="publish",outcome="result"': 6.0, 'kind="publish",outcome="unauthorized"': 3.0}

    def counted() -> dict[str, float]:
        after = callback_counts(gateway)
        return {labels: after.get(labels, 0) - before.get(labels, 0) for labels in expected}

    # The workers write what their event loops counted once a second (realtime/observability.py).
    wait_for(lambda: counted() == expected, timeout=5, what="the calls to be counted")
    # Flushes later: still counted once, by whichever worker answered.
    settled_counts(gateway)
    assert counted() == expected, counted()
