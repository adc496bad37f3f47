"""The WSGI fast path answers exactly as the DRF views do, and hands everything else to Django."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client

from callbacks.tests.conftest import BASE
from realtime.wsgi import application

pytestmark = pytest.mark.django_db


def wsgi(
    path: str, body: bytes, *, method: str = "POST", secret: str | None = None, **extra: str
) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "3000",
        "HTTP_HOST": "127.0.0.1", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
        "HTTP_X_CENTRIFUGO_PROXY_SECRET": settings.CENTRIFUGO_PROXY_SECRET if secret is None else secret, **extra,
    }  # fmt: skip
    started: list[Any] = []
    chunks = application(environ, lambda status, headers, *_: started.append((status, dict(headers))))
    body_out = b"".join(chunks)
    return started[0][0], started[0][1], body_out


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
    status, headers, fast = wsgi(f"/centrifugo/{kind}", raw)
    drf = client.post(f"/centrifugo/{kind}", raw, content_type="application/json",
                      headers={"X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET})  # fmt: skip
    assert (status, headers["Content-Type"], fast) == ("200 OK", "application/json", drf.content)


def test_a_publish_is_stored(redis_client: redis.Redis) -> None:
    status, _, body = wsgi(
        "/centrifugo/publish", json.dumps({**BASE, "user": "42", "channel": "chat:1", "data": 1}).encode()
    )
    tags = json.loads(body)["result"]["tags"]
    assert status == "200 OK"
    assert redis_client.xlen(tags["stream"]) == 1


@pytest.mark.parametrize(
    ("body", "secret", "extra", "expected_status", "expected_error"),
    [
        (b"{}", "wrong", {}, "401 Unauthorized", {"code": 107, "message": "missing or wrong proxy secret"}),
        (b"{", None, {}, "400 Bad Request", {"code": 107, "message": "bad request: Input data was truncated"}),
        (
            b"{}",
            None,
            {"CONTENT_LENGTH": "x"},
            "400 Bad Request",
            {"code": 107, "message": "bad request: invalid Content-Length"},
        ),
        (
            b"{}",
            None,
            {"CONTENT_LENGTH": str(10**9)},
            "413 Payload Too Large",
            {"code": 106, "message": "request body too large"},
        ),
    ],
)
def test_bad_calls_get_the_protocols_errors(
    body: bytes, secret: str | None, extra: dict[str, str], expected_status: str, expected_error: dict[str, object]
) -> None:
    status, _, answer = wsgi("/centrifugo/subscribe", body, secret=secret, **extra)
    assert (status, json.loads(answer)) == (expected_status, {"error": expected_error})


def test_an_unexpected_error_is_a_logged_500_in_the_protocols_shape(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from callbacks import views

    def boom(self: object, payload: object) -> bytes:
        raise RuntimeError("boom")

    monkeypatch.setattr(views.SubscribeView, "handle", boom)
    status, _, answer = wsgi("/centrifugo/subscribe", json.dumps({**BASE, "channel": "chat:1"}).encode())
    assert (status, json.loads(answer)) == (
        "500 Internal Server Error",
        {"error": {"code": 100, "message": "internal error"}},
    )
    assert "subscribe: unexpected error" in caplog.text


def test_everything_else_goes_to_django() -> None:
    assert wsgi("/centrifugo/publish", b"", method="GET")[0] == "405 Method Not Allowed"
    status, _, body = wsgi("/centrifugo/connect", json.dumps(BASE).encode())
    assert (status, json.loads(body)) == ("200 OK", {"result": {"user": ""}})
    assert wsgi("/health", b"", method="GET")[0] in ("200 OK", "503 Service Unavailable")
