"""GET /api/channels/<channel>/presence and /presence_stats against a stand-in for Centrifugo's
server API that answers with the exact bodies Centrifugo v6.9.1 sends (internal/api/api.go,
internal/apiproto). The real thing, on two nodes, is tests/cluster/test_presence_and_enrichment.py."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from callbacks import server_api
from partitions import models, services
from partitions.store import rules_store
from tests.support.procs import free_port

pytestmark = pytest.mark.django_db

KEY = "server-api-key-for-tests"
CENTRIFUGO_KEY = "centrifugo-api-key-for-tests"
ALICE = "0c6a1f3e-64f6-4c54-9bd8-2b49a0d6a8c1"
BOB = "6d0a0b5b-9d55-4f3c-8f0c-6bd0e4f0b7a2"
# Centrifugo's `presence` result: a map client id -> ClientInfo; conn_info/chan_info only when set.
PRESENCE = {
    "result": {
        "presence": {
            ALICE: {"user": "alice", "client": ALICE, "conn_info": {"name": "Alice"}},
            BOB: {"user": "bob", "client": BOB},
        }
    }
}


class FakeCentrifugo:
    """Answers POST /api/<method> with what `answers[method]` holds (bytes, or a JSON value) and
    records each call (path, X-API-Key, decoded body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.answers: dict[str, Any] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls.append((self.path, self.headers["X-API-Key"], body))
                answer = outer.answers[self.path.rsplit("/", 1)[1]]
                raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def centrifugo(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCentrifugo]:
    fake = FakeCentrifugo()
    settings.GATEWAY_API_KEY = KEY
    settings.CENTRIFUGO_API_KEY = CENTRIFUGO_KEY
    settings.CENTRIFUGO_API_URL = fake.url
    monkeypatch.setattr(server_api._connections, "held", None, raising=False)
    yield fake
    fake.stop()


def get(client: Client, path: str, key: str | None = KEY) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Api-Key {key}"} if key is not None else {}
    response = client.get(path, headers=headers)
    return response.status_code, json.loads(response.content)


def test_issue12_item5_presence_lists_who_is_in_the_channel_with_their_name(
    client: Client, centrifugo: FakeCentrifugo
) -> None:
    centrifugo.answers["presence"] = PRESENCE
    status, body = get(client, "/api/channels/chat:room1/presence")
    assert status == 200
    assert body == {
        "result": {
            "channel": "chat:room1",
            "presence": {
                ALICE: {"user": "alice", "client": ALICE, "name": "Alice", "conn_info": {"name": "Alice"}},
                BOB: {"user": "bob", "client": BOB, "name": None},
            },
        }
    }
    assert centrifugo.calls == [("/api/presence", CENTRIFUGO_KEY, {"channel": "chat:room1"})]


def test_issue12_item5_presence_stats_come_from_centrifugo(client: Client, centrifugo: FakeCentrifugo) -> None:
    centrifugo.answers["presence_stats"] = {"result": {"num_clients": 3, "num_users": 2}}
    assert get(client, "/api/channels/chat:room1/presence_stats") == (
        200,
        {"result": {"channel": "chat:room1", "num_clients": 3, "num_users": 2}},
    )
    centrifugo.answers["presence_stats"] = {"result": {}}  # Go's omitempty: zero counts are left out
    assert get(client, "/api/channels/chat:empty/presence_stats")[1]["result"]["num_clients"] == 0
    assert [call[2] for call in centrifugo.calls] == [{"channel": "chat:room1"}, {"channel": "chat:empty"}]


@pytest.mark.parametrize(
    ("path", "channel"),
    [
        ("/api/channels/chat:room%231/presence", "chat:room#1"),  # '#' must be encoded: a fragment otherwise
        ("/api/channels/chat:a/b$c/presence", "chat:a/b$c"),  # ':', '/', '$' as they are
        ("/api/channels/chat%3Aa%2Fb%24c/presence", "chat:a/b$c"),  # or encoded
        ("/api/channels/chat:x/presence/presence", "chat:x/presence"),  # the last /presence is the endpoint
        ("/api/channels/chat:a%20%25%3F/presence", "chat:a %?"),  # ' ', '%', '?' percent-encoded
    ],
)
def test_issue12_item5_the_channel_in_the_path_is_percent_decoded_once(
    client: Client, centrifugo: FakeCentrifugo, path: str, channel: str
) -> None:
    centrifugo.answers["presence"] = {"result": {}}
    assert get(client, path) == (200, {"result": {"channel": channel, "presence": {}}})
    assert centrifugo.calls[-1][2] == {"channel": channel}


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("/api/channels/secret:x/presence", 102, "unknown channel 'secret:x': no channel rule matches it"),
        ("/api/channels/chat:%00x/presence", 107, "channel contains control characters: 'chat:\\x00x'"),
        ("/api/channels/chat:%0Ax/presence_stats", 107, "channel contains control characters: 'chat:\\nx'"),
        (f"/api/channels/chat:{'x' * 251}/presence", 107, f"channel is longer than 255 characters: 'chat:{'x' * 251}'"),
        ("/api/channels/chat:caf%C3%A9/presence", 107, "channel is not ASCII: Centrifugo lets clients subscribe to ASCII channel names only: 'chat:café'"),
    ],
)  # fmt: skip
def test_issue12_item5_an_unknown_or_invalid_channel_is_a_400_and_centrifugo_is_not_asked(
    client: Client, centrifugo: FakeCentrifugo, path: str, code: int, message: str
) -> None:
    assert get(client, path) == (400, {"error": {"code": code, "message": message}})
    assert centrifugo.calls == []


def test_issue12_item5_presence_off_is_a_404(client: Client, centrifugo: FakeCentrifugo) -> None:
    # Centrifugo's own answer when its namespace has no presence (error 108, "not available").
    centrifugo.answers["presence"] = {"error": {"code": 108, "message": "not available"}}
    assert get(client, "/api/channels/chat:room1/presence") == (
        404,
        {"error": {"code": 108, "message": "presence is not enabled for 'chat:room1' in Centrifugo's configuration"}},
    )
    # The channel rule turns presence off for its subscriptions: Centrifugo would answer an empty
    # list that looks like "nobody is here"; say what is true instead.
    rule = models.ChannelRule.objects.get(pattern="chat:*")
    rule.presence = False
    services.rule_save(actor="test", rule=rule)
    rules_store.invalidate()  # what the commit does (a test's transaction is never committed)
    status, body = get(client, "/api/channels/chat:room1/presence_stats")
    assert (status, body["error"]["code"]) == (404, 108)
    assert (
        body["error"]["message"] == f"presence is off for 'chat:room1': rule #{rule.pk} 'chat:*' sets presence: false"
    )
    assert len(centrifugo.calls) == 1


def test_issue12_item5_centrifugo_down_is_a_temporary_503(client: Client, settings: Any) -> None:
    settings.GATEWAY_API_KEY = KEY
    settings.CENTRIFUGO_API_URL = f"http://127.0.0.1:{free_port()}"  # nobody listens
    status, body = get(client, "/api/channels/chat:room1/presence")
    assert status == 503
    assert body["error"]["code"] == 1504
    assert body["error"]["temporary"] is True
    assert body["error"]["message"].startswith("Centrifugo is unavailable: ConnectionRefusedError")


def test_issue12_item5_a_centrifugo_internal_error_is_a_temporary_503(
    client: Client, centrifugo: FakeCentrifugo
) -> None:
    centrifugo.answers["presence"] = {"error": {"code": 100, "message": "internal server error"}}
    assert get(client, "/api/channels/chat:room1/presence") == (
        503,
        {"error": {"code": 1504, "message": "Centrifugo answered error 100: internal server error", "temporary": True}},
    )
    centrifugo.answers["presence"] = b"<html>proxy error</html>"
    status, body = get(client, "/api/channels/chat:room1/presence")
    assert (status, body["error"]["code"], body["error"]["temporary"]) == (503, 1504, True)


@pytest.mark.parametrize(
    ("key", "message"), [(None, "send 'Authorization: Api-Key <key>'"), ("wrong", "wrong API key")]
)
@pytest.mark.parametrize("endpoint", ["presence", "presence_stats"])
def test_issue12_item5_presence_needs_the_api_key(
    client: Client, centrifugo: FakeCentrifugo, key: str | None, message: str, endpoint: str
) -> None:
    response = client.get(
        f"/api/channels/chat:room1/{endpoint}", headers={"Authorization": f"Api-Key {key}"} if key else {}
    )
    assert (response.status_code, json.loads(response.content)) == (401, {"error": {"code": 107, "message": message}})
    assert response["WWW-Authenticate"] == "Api-Key"
    assert centrifugo.calls == []


def test_issue12_item5_the_asgi_transport_serves_presence_too(
    centrifugo: FakeCentrifugo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.asgi import asgi_request, in_test_thread

    centrifugo.answers["presence"] = PRESENCE
    with in_test_thread(monkeypatch):
        answer = asgi_request(
            "/api/channels/chat:room#1/presence",  # scope["path"] is already decoded
            method="GET",
            headers={"Authorization": f"Api-Key {KEY}"},
        )
    assert answer.status == 200
    assert json.loads(answer.body)["result"]["presence"][ALICE]["name"] == "Alice"
    assert centrifugo.calls == [("/api/presence", CENTRIFUGO_KEY, {"channel": "chat:room#1"})]


def test_issue12_item5_no_channel_in_the_path_gets_a_5xx(client: Client, centrifugo: FakeCentrifugo) -> None:
    """400 fuzzed channels (fixed seed): any bytes, percent-encoded, some left raw where a URL allows."""
    import random
    from urllib.parse import quote_from_bytes

    centrifugo.answers["presence"] = {"result": {}}
    rng = random.Random(12)
    statuses = set()
    for n in range(400):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        if n % 2:
            raw = b"chat:" + raw
        path = quote_from_bytes(raw, safe=":/$" if n % 3 else "")
        response = client.get(f"/api/channels/{path}/presence", headers={"Authorization": f"Api-Key {KEY}"})
        assert response["Content-Type"] == "application/json", (raw, response.content[:200])
        statuses.add(response.status_code)
        body = json.loads(response.content)
        if response.status_code == 200:
            assert body["result"]["presence"] == {}
        else:
            assert body["error"]["message"], raw
    assert statuses <= {200, 400}, statuses
    assert 200 in statuses
    assert 400 in statuses


def test_issue13_item3_presence_of_a_channel_closed_for_subscribe_is_still_answered(
    client: Client, centrifugo: FakeCentrifugo, django_capture_on_commit_callbacks: Any
) -> None:
    # Operators watch who is still in a channel they closed: the closure is no "unknown channel".
    from control.services import channel_close

    with django_capture_on_commit_callbacks(execute=True):
        channel_close(pattern="chat:*", actor="ops", reason="raid", subscribe=True)
    centrifugo.answers["presence"] = PRESENCE
    status, body = get(client, "/api/channels/chat:room1/presence")
    assert (status, sorted(body["result"]["presence"])) == (200, sorted([ALICE, BOB]))
