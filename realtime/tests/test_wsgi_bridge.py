"""The bridge that serves Django's WSGI handler from the event loop, with a plain WSGI app that
echoes its environ: PEP 3333's environ from the ASGI scope, the body, the response."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from realtime import wsgi_bridge
from tests.support.asgi import asgi_request


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    seen = {k: v for k, v in environ.items() if isinstance(v, str)}
    seen["body"] = environ["wsgi.input"].read().decode()
    start_response("201 Created", [("Content-Type", "application/json"), ("X-Thread", "yes")])
    return [json.dumps(seen).encode()]


APP = wsgi_bridge.WsgiInThreads(echo)


def test_the_environ_is_pep_3333s() -> None:
    answer = asgi_request(
        "/caf\u00e9/x",
        b"hello",
        method="PUT",
        headers={"Content-Type": "text/plain", "Cookie": "a=1", "X-Forwarded-For": "10.0.0.1"},
        app=APP,
    )
    seen = json.loads(answer.body)
    assert answer.status == 201
    assert answer.headers["x-thread"] == "yes"
    assert seen["REQUEST_METHOD"] == "PUT"
    assert seen["PATH_INFO"] == "/caf\u00e9/x".encode().decode("latin-1")  # PEP 3333: bytes as latin-1
    assert (seen["CONTENT_TYPE"], seen["CONTENT_LENGTH"], seen["body"]) == ("text/plain", "5", "hello")
    assert (seen["HTTP_COOKIE"], seen["HTTP_X_FORWARDED_FOR"]) == ("a=1", "10.0.0.1")
    assert (seen["REMOTE_ADDR"], seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("127.0.0.1", "127.0.0.1", "3000")


def test_a_body_in_chunks_is_joined() -> None:
    seen = json.loads(asgi_request("/", app=APP, chunks=[b"ab", b"cd", b"e"]).body)
    assert (seen["body"], seen["CONTENT_LENGTH"]) == ("abcde", "5")


def test_header_names_with_underscores_are_dropped() -> None:
    """As gunicorn does: X_Proxy_Secret would otherwise pass for X-Proxy-Secret (HTTP_X_PROXY_SECRET)."""
    seen = json.loads(asgi_request("/", app=APP, headers={"X_Proxy_Secret": "forged"}).body)
    assert "HTTP_X_PROXY_SECRET" not in seen


def test_a_body_over_the_limit_is_413(settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    answer = asgi_request("/", app=APP, chunks=[b"123456", b"789012"])
    assert (answer.status, answer.body) == (413, b"request body too large\n")


def test_websockets_are_closed() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    asyncio.run(APP({"type": "websocket", "path": "/"}, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_blocking_work_runs_in_the_workers_threads() -> None:
    import threading

    async def body() -> str:
        return str(await wsgi_bridge.run_blocking(lambda: threading.current_thread().name))

    try:
        assert asyncio.run(body()).startswith("django")
    finally:
        wsgi_bridge.shutdown_threads()
