"""POST /api/publish without Centrifugo running: everything up to the broadcast. The broadcast
itself is covered end to end in tests/e2e/test_message_log.py."""

from __future__ import annotations

import json

import pytest
import redis
from django.test import Client

from tests.support.procs import free_port

pytestmark = pytest.mark.django_db

KEY = "server-api-key-for-tests"


@pytest.fixture(autouse=True)
def _api(settings: object) -> None:
    settings.GATEWAY_API_KEY = KEY  # type: ignore[attr-defined]
    settings.CENTRIFUGO_API_URL = f"http://127.0.0.1:{free_port()}"  # type: ignore[attr-defined]  # nobody listens


def post(client: Client, body: object, key: str | None = KEY, **headers: str) -> tuple[int, dict[str, object]]:
    if key is not None:
        headers["Authorization"] = f"Api-Key {key}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/api/publish", data=raw, content_type="application/json", headers=headers)
    return response.status_code, json.loads(response.content)


@pytest.mark.parametrize(
    ("key", "message"),
    [(None, "send 'Authorization: Api-Key <key>'"), ("wrong", "wrong API key")],
)
def test_it_needs_the_api_key(client: Client, redis_client: redis.Redis, key: str | None, message: str) -> None:
    assert post(client, {"channel": "chat:x", "data": 1}, key=key) == (
        401,
        {"error": {"code": 107, "message": message}},
    )
    assert redis_client.keys("rtgw:stream:*") == []


def test_without_a_configured_key_the_api_is_off(client: Client, settings: object) -> None:
    settings.GATEWAY_API_KEY = None  # type: ignore[attr-defined]
    status, body = post(client, {"channel": "chat:x", "data": 1})
    assert (status, body["error"]["message"]) == (401, "the server API is disabled: GATEWAY_API_KEY is not set")  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "bad request: Input data was truncated"),
        ({"data": 1}, "bad request: Object missing required field `channel`"),
        ({"channel": "chat:x"}, "bad request: Object missing required field `data`"),
        ({"channel": "chat:x", "data": 1, "extra": 2}, "bad request: Object contains unknown field `extra`"),
    ],
)
def test_bad_bodies_get_400(client: Client, body: object, message: str) -> None:
    status, answer = post(client, body)
    assert (status, answer["error"]["message"]) == (400, message)  # type: ignore[index]


def test_the_rules_apply_to_server_publications(client: Client, redis_client: redis.Redis) -> None:
    status, body = post(client, {"channel": "secret:x", "data": 1})
    assert (status, body) == (403, {"error": {"code": 103, "message": "permission denied", "temporary": False}})


def test_stored_but_not_broadcast_is_a_temporary_502_and_a_retry_stores_nothing_new(
    client: Client, redis_client: redis.Redis
) -> None:
    first = post(client, {"channel": "chat:x", "data": {"n": 1}}, **{"Idempotency-Key": "k-1"})
    again = post(client, {"channel": "chat:x", "data": {"n": 1}}, **{"Idempotency-Key": "k-1"})
    assert first[0] == again[0] == 502
    assert first[1]["error"] == {  # type: ignore[index]
        "code": 1502, "message": "stored but not broadcast; retry with the same idempotency key", "temporary": True,
    }  # fmt: skip
    assert first[1]["tags"] == again[1]["tags"]
    assert redis_client.xlen(first[1]["tags"]["stream"]) == 1  # type: ignore[index]


class _Centrifugo:
    """Stands in for Centrifugo's HTTP API in these unit tests only (the real one is in the e2e
    tests): answers every publish, records what it was sent, counts TCP connections, can answer
    garbage."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.connections = 0
        self.garbage = False
        self.bodies: list[dict[str, object]] = []  # the publish commands received
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Centrifugo

            def setup(self) -> None:
                outer.connections += 1
                super().setup()

            def do_POST(self) -> None:  # http.server's naming
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                if outer.garbage:
                    self.wfile.write(b"NOT HTTP\r\n\r\n")
                    self.close_connection = True
                    return
                body = b'{"result":{"offset":1,"epoch":"e"}}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_broadcasts_reuse_one_connection_and_a_broken_answer_is_a_502(
    client: Client, redis_client: redis.Redis, settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callbacks import server_api

    centrifugo = _Centrifugo()
    settings.CENTRIFUGO_API_URL = centrifugo.url  # type: ignore[attr-defined]
    monkeypatch.setattr(server_api._connections, "held", None, raising=False)
    try:
        for n in range(3):
            assert post(client, {"channel": "chat:x", "data": n})[0] == 200
        assert centrifugo.connections == 1
        monkeypatch.setattr(server_api, "REUSE_SECONDS", 0.0)  # an old connection is not reused
        assert post(client, {"channel": "chat:x", "data": 4})[0] == 200
        assert centrifugo.connections == 2
        centrifugo.garbage = True
        status, body = post(client, {"channel": "chat:x", "data": 5})
        assert (status, body["error"]["code"]) == (502, 1502)  # type: ignore[index]
        centrifugo.garbage = False
        assert post(client, {"channel": "chat:x", "data": 6})[0] == 200  # a fresh connection
    finally:
        centrifugo.stop()
