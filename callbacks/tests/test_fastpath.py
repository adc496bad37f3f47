"""The ASGI fast path (realtime.asgi) answers exactly as the DRF views do, refuses bad calls in the
protocol's shape, and hands everything else to Django through the WSGI bridge."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django.test import Client

from callbacks.tests.conftest import BASE, NOW
from partitions.store import rules_store
from tests.support.asgi import Response, asgi_request, in_test_thread

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _test_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with in_test_thread(monkeypatch):
        yield


def fast(path: str, body: bytes, *, method: str = "POST", secret: str | None = None, **headers: str) -> Response:
    sent = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET if secret is None else secret,
        **headers,
    }
    return asgi_request(path, body, method=method, headers=sent)


CASES = [
    ("subscribe", {"user": "42", "channel": "chat:1"}),
    ("subscribe", {"user": "", "channel": "chat:1"}),
    ("sub_refresh", {"user": "", "channel": "chat:1"}),
    ("refresh", {"user": "42", "meta": {"auth": "token"}}),
    ("rpc", {"user": "42", "method": "nope"}),
    ("publish", {"user": "", "channel": "chat:1", "data": {}}),
]


@pytest.mark.parametrize(("kind", "body"), CASES)
def test_it_answers_like_the_drf_view(client: Client, kind: str, body: dict[str, object], redis_url: str) -> None:
    raw = json.dumps({**BASE, **body}).encode()
    answer = fast(f"/centrifugo/{kind}", raw)
    drf = client.post(f"/centrifugo/{kind}", raw, content_type="application/json",
                      headers={"X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET})  # fmt: skip
    assert (answer.status, answer.headers["content-type"], answer.body) == (200, "application/json", drf.content)


def test_a_publish_is_stored_before_it_is_acknowledged(redis_client: redis.Redis) -> None:
    answer = fast("/centrifugo/publish", json.dumps({**BASE, "user": "42", "channel": "chat:1", "data": 1}).encode())
    tags = json.loads(answer.body)["result"]["tags"]
    assert answer.status == 200
    assert redis_client.xrange(tags["stream"]) == [
        (tags["stream_id"], {"channel": "chat:1", "user": "42", "client": BASE["client"], "data": "1",
                             "ts": redis_client.xrange(tags["stream"])[0][1]["ts"]})
    ]  # fmt: skip


def test_a_request_id_is_echoed() -> None:
    answer = fast(
        "/centrifugo/subscribe", json.dumps({**BASE, "channel": "chat:1"}).encode(), **{"X-Request-Id": "r-1"}
    )
    assert answer.headers["x-request-id"] == "r-1"


# With the right secret a refused body is a 200 carrying the protocol's error (it was a 400 or 413):
# Centrifugo turns any non-200 answer into error 100 "internal", temporary, which the client's SDK
# retries forever; the 107 or 106 has to reach the client as it is. A wrong secret stays 401.
@pytest.mark.parametrize(
    ("body", "secret", "headers", "expected_status", "expected_error"),
    [
        (b"{}", "wrong", {}, 401, {"code": 107, "message": "missing or wrong proxy secret"}),
        (b"{", None, {}, 200, {"code": 107, "message": "bad request: Input data was truncated"}),
        (b"{}", None, {"Content-Length": "x"}, 200, {"code": 107, "message": "bad request: invalid Content-Length"}),
        (b"{}", None, {"Content-Length": str(10**9)}, 200, {"code": 106, "message": "request body too large"}),
    ],
)
def test_bad_calls_get_the_protocols_errors(
    body: bytes, secret: str | None, headers: dict[str, str], expected_status: int, expected_error: dict[str, object]
) -> None:
    answer = fast("/centrifugo/subscribe", body, secret=secret, **headers)
    assert (answer.status, json.loads(answer.body)) == (expected_status, {"error": expected_error})


def test_a_chunked_body_over_the_limit_is_refused_without_a_content_length(settings: object) -> None:
    chunk = b" " * 1024
    limit = settings.CALLBACK_MAX_BODY  # type: ignore[attr-defined]
    sent = {"Content-Type": "application/json", "X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET}  # type: ignore[attr-defined]
    answer = asgi_request("/centrifugo/publish", headers=sent, chunks=[chunk] * (limit // len(chunk) + 2))
    assert (answer.status, json.loads(answer.body)) == (
        200,  # as above: the client gets the 106
        {"error": {"code": 106, "message": "request body too large"}},
    )


def test_an_unexpected_error_is_a_logged_500_in_the_protocols_shape(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from callbacks import handlers

    def boom(payload: object) -> bytes:
        raise RuntimeError("boom")

    # `answer` is what both of the handler's transports (handle, handle_async) run first.
    monkeypatch.setattr(handlers.SubscribeHandler, "answer", staticmethod(boom))
    answer = fast("/centrifugo/subscribe", json.dumps({**BASE, "channel": "chat:1"}).encode())
    assert (answer.status, json.loads(answer.body)) == (500, {"error": {"code": 100, "message": "internal error"}})
    assert "subscribe: unexpected error" in caplog.text


def test_rules_not_yet_loaded_are_loaded_off_the_loop_first() -> None:
    rules_store._ruleset = None  # a worker whose start-up preload failed (the database was away)
    answer = fast("/centrifugo/subscribe", json.dumps({**BASE, "user": "42", "channel": "chat:1"}).encode())
    assert (answer.status, json.loads(answer.body)) == (200, {"result": {"expire_at": NOW + 2}})
    assert not rules_store.needs_load


def test_rules_that_cannot_be_loaded_are_a_temporary_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from partitions import selectors

    def database_down() -> None:
        raise RuntimeError("database unavailable")

    rules_store._ruleset = None
    monkeypatch.setattr(selectors, "ruleset_load", database_down)
    answer = fast("/centrifugo/subscribe", json.dumps({**BASE, "user": "42", "channel": "chat:1"}).encode())
    assert (answer.status, json.loads(answer.body)) == (
        200,
        {"error": {"code": 1503, "message": "rules unavailable, retry later", "temporary": True}},
    )


def test_everything_else_goes_to_django_through_the_bridge(client: Client) -> None:
    assert asgi_request("/centrifugo/publish", method="GET").status == 405
    answer = fast("/centrifugo/connect", json.dumps(BASE).encode())
    assert (answer.status, json.loads(answer.body)) == (200, {"result": {"user": ""}})
    assert asgi_request("/health", method="GET").status in (200, 503)
    login = asgi_request("/admin/login/", method="GET")
    assert login.status == 200
    assert b"csrfmiddlewaretoken" in login.body
    assert "csrftoken=" in login.headers.get("set-cookie", "")
    assert asgi_request("/admin/", method="GET").status == 302


def test_connect_without_a_session_cookie_is_answered_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from callbacks import handlers

    def no_session(session_key: str) -> bytes:
        raise AssertionError("read the session store")

    monkeypatch.setattr(handlers.ConnectHandler, "answer_session", staticmethod(no_session))
    anonymous = fast("/centrifugo/connect", json.dumps(BASE).encode(), Cookie="theme=dark")
    assert (anonymous.status, json.loads(anonymous.body)) == (200, {"result": {"user": ""}})
    bad_token = fast("/centrifugo/connect", json.dumps({**BASE, "data": {"token": "x.y.z"}}).encode())
    assert json.loads(bad_token.body)["disconnect"]["code"] == 4501  # invalid token


def test_connect_with_a_session_cookie_is_answered_from_the_session_store(client: Client) -> None:
    from django.contrib.auth.models import User

    user = User.objects.create_user("cid", password="pw-for-tests-only")
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    answer = fast("/centrifugo/connect", json.dumps(BASE).encode(), Cookie=f"{settings.SESSION_COOKIE_NAME}={session}")
    result = json.loads(answer.body)["result"]
    assert (answer.status, result["user"], result["meta"]["auth"]) == (200, str(user.pk), "session")
