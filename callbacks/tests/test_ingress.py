"""Hostile request bodies (hardening issue 9, items 2-4): deep nesting and invalid UTF-8 get the
protocol's 107 on every callback and on `POST /api/publish`, never a 500; credentials and sizes
are checked before a body is read; a worker holds a bounded number of body bytes at once."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client

from callbacks.json_checks import MAX_JSON_DEPTH, json_depth, json_problem
from callbacks.tests.conftest import BASE, Call

pytestmark = pytest.mark.django_db

KINDS = ["connect", "refresh", "subscribe", "sub_refresh", "publish", "rpc"]
FIELDS = {"user": "42", "channel": "chat:x", "method": "history"}
API_KEY = "server-api-key-for-tests"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def body_with_data(data: bytes, **fields: str) -> bytes:
    envelope = json.dumps({**BASE, **FIELDS, **fields}).encode()
    return envelope[:-1] + b', "data": ' + data + b"}"


# --- item 2: deep nesting ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("depth", [982, 20_000])
def test_issue9_item2_deep_nesting_is_a_107_on_every_callback(
    call: Call, kind: str, depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    status, body = call(kind, body_with_data(nested(depth)))
    assert (status, body) == (
        200,
        {"error": {"code": 107, "message": f"bad request: JSON nested deeper than {MAX_JSON_DEPTH} levels"}},
    )
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_issue9_item2_data_nested_63_levels_is_published(call: Call, redis_client: redis.Redis) -> None:
    status, body = call("publish", body_with_data(nested(MAX_JSON_DEPTH - 1)))
    assert status == 200
    assert "tags" in body["result"]
    status, body = call("publish", body_with_data(nested(MAX_JSON_DEPTH)))
    assert body["error"]["code"] == 107


def test_issue9_item2_depth_ignores_brackets_inside_strings() -> None:
    assert json_depth(b'{"a": "[[[{{{\\"]]]", "b": [[1]]}') == 3
    assert json_problem(json.dumps({"text": "[" * 500}).encode()) is None
    assert json_problem(json.dumps({"text": "\\\\" + "{" * 500, "n": [[]]}).encode()) is None
    assert json_problem(json.dumps([{"a": [i]} for i in range(500)]).encode()) is None  # many, shallow
    assert json_problem(b'{"a": "x]]]]", "b": ' + nested(70) + b"}") is not None  # strings do not hide depth


def test_issue9_item2_depth_is_exact_whatever_the_strings_hold() -> None:
    """Strings full of brackets, quotes and backslashes (fixed seed): the depth json_depth reports
    is the document's, so no string can hide nesting from the check, nor fake it."""
    rng = random.Random(9)

    def text() -> str:
        return "".join(rng.choice('[]{}"\\ab\n\u00e9') for _ in range(rng.randrange(0, 6)))

    def document(depth: int) -> object:
        if depth == 0 or rng.random() < 0.3:
            return rng.choice([text(), 1, None])
        items = [document(depth - 1) for _ in range(rng.randrange(0, 3))]
        return items if rng.random() < 0.5 else {text(): item for item in items}

    def nesting(value: object) -> int:
        inner = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        return 0 if inner is None else 1 + max((nesting(v) for v in inner), default=0)

    for _ in range(3000):
        value = document(rng.randrange(0, 8))
        raw = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        assert json_depth(raw) == nesting(value), raw


def test_issue9_item2_deep_nesting_on_the_server_api_is_a_400(client: Client, settings: Any) -> None:
    settings.GATEWAY_API_KEY = API_KEY
    response = client.post("/api/publish", b'{"channel": "chat:x", "data": ' + nested(982) + b"}",
                           content_type="application/json", headers={"Authorization": f"Api-Key {API_KEY}"})  # fmt: skip
    assert (response.status_code, json.loads(response.content)["error"]["code"]) == (400, 107)


# --- item 3: invalid UTF-8 ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_issue9_item3_invalid_utf8_in_a_string_is_a_107_on_every_callback(call: Call, kind: str) -> None:
    raw = b'{"user":"alice","channel":"chat:\xff\xfe","method":"m\xff","name":"\xc3","data":{}}'
    status, body = call(kind, raw)
    assert (status, body) == (
        200,
        {"error": {"code": 107, "message": "bad request: the body is not valid UTF-8 (byte 32)"}},
    )


def test_issue9_item3_invalid_utf8_in_publication_data_is_not_stored(call: Call, redis_client: redis.Redis) -> None:
    """msgspec does not check a Raw field (the publication's data) for UTF-8: it was stored, and broke
    every JSON subscriber."""
    status, body = call("publish", body_with_data(b'{"text": "\xff\xfe"}'))
    assert (status, body["error"]["code"]) == (200, 107)
    assert redis_client.keys("rtgw:stream:*") == []


def test_issue9_item3_invalid_utf8_on_the_server_api_is_a_400(
    client: Client, settings: Any, redis_client: redis.Redis
) -> None:
    settings.GATEWAY_API_KEY = API_KEY
    for raw in (b'{"channel": "chat:\xff", "data": 1}', b'{"channel": "chat:x", "data": "\xe2\x82"}'):
        response = client.post("/api/publish", raw, content_type="application/json",
                               headers={"Authorization": f"Api-Key {API_KEY}"})  # fmt: skip
        assert (response.status_code, json.loads(response.content)["error"]["code"]) == (400, 107)
    assert redis_client.keys("rtgw:stream:*") == []


def test_issue9_item3_every_decode_site_survives_any_bytes() -> None:
    from callbacks import handlers, protocol, publishing, rpc

    for hostile in (b"\xff\xfe", nested(5000), b'{"token": "\xff"}', b'{"_idempotency_key": "\xff"}'):
        assert handlers._connect_token(hostile) == ""
        assert protocol.connection_meta(hostile) == protocol.ConnectionMeta()  # type: ignore[arg-type]
        assert publishing.idempotency_key_of(hostile) == ""
        assert json.loads(rpc.history(user="42", roles=[], data=hostile))["error"]["code"] == 107


# --- item 4: credentials and sizes before the body; bytes in flight -------------------------------


class Untouched:
    """An ASGI `receive` that fails the test if the body is read."""

    async def __call__(self) -> dict[str, Any]:
        raise AssertionError("the body was read")


def asgi_call(path: str, headers: dict[str, str], receive: Any) -> tuple[int, dict[str, str], bytes]:
    from realtime.asgi import application

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "server": ("127.0.0.1", 3000), "client": ("127.0.0.1", 40000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    start = sent[0]
    return (
        start["status"],
        {k.decode(): v.decode() for k, v in start["headers"]},
        b"".join(m.get("body", b"") for m in sent[1:]),
    )


FIFTEEN_MB = str(15 * 1024 * 1024)


@pytest.mark.parametrize("authorization", [None, "Api-Key wrong", "Bearer x"])
def test_issue9_item4_the_server_api_refuses_a_caller_without_the_key_before_reading(
    settings: Any, authorization: str | None
) -> None:
    settings.GATEWAY_API_KEY = API_KEY
    headers = {"Content-Type": "application/json", "Content-Length": FIFTEEN_MB}
    if authorization:
        headers["Authorization"] = authorization
    status, sent, body = asgi_call("/api/publish", headers, Untouched())
    assert (status, sent["www-authenticate"], json.loads(body)["error"]["code"]) == (401, "Api-Key", 107)


def test_issue9_item4_an_oversized_server_api_body_is_refused_by_its_length(settings: Any) -> None:
    settings.GATEWAY_API_KEY = API_KEY
    headers = {"Authorization": f"Api-Key {API_KEY}", "Content-Length": FIFTEEN_MB}
    status, _, body = asgi_call("/api/publish", headers, Untouched())
    assert (status, json.loads(body)) == (413, {"error": {"code": 106, "message": "request body too large"}})


def test_issue9_item4_a_proxy_call_without_the_secret_is_refused_before_reading() -> None:
    status, _, body = asgi_call("/centrifugo/publish", {"Content-Length": FIFTEEN_MB}, Untouched())
    assert (status, json.loads(body)["error"]["message"]) == (401, "missing or wrong proxy secret")
    secret = {"X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET, "Content-Length": FIFTEEN_MB}
    status, _, body = asgi_call("/centrifugo/publish", secret, Untouched())
    assert (status, json.loads(body)["error"]["code"]) == (200, 106)


def test_issue9_item4_other_paths_are_capped_at_djangos_upload_size() -> None:
    length = str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    status, _, body = asgi_call("/admin/login/", {"Content-Length": length}, Untouched())
    assert (status, body) == (413, b"request body too large\n")


def test_issue9_item4_a_chunked_body_is_counted_as_it_arrives(settings: Any) -> None:
    settings.GATEWAY_API_KEY = API_KEY
    reads = 0

    async def endless() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b" " * 65536, "more_body": True}

    status, _, _ = asgi_call("/api/publish", {"Authorization": f"Api-Key {API_KEY}"}, endless)
    assert status == 413
    assert reads == settings.SERVER_API_MAX_BODY // 65536 + 1


def test_issue9_item4_bodies_over_the_bound_in_flight_get_a_temporary_503(settings: Any) -> None:
    from realtime.request_body import in_flight

    settings.GATEWAY_API_KEY = API_KEY
    in_flight.held = settings.BODY_BYTES_IN_FLIGHT - 100  # other requests' bodies, being read
    try:
        status, sent, body = asgi_call(
            "/api/publish", {"Authorization": f"Api-Key {API_KEY}", "Content-Length": "101"}, Untouched()
        )
        assert (status, sent["retry-after"], json.loads(body)["error"]["temporary"]) == (503, "1", True)
        secret = {"X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET, "Content-Length": "101"}
        status, sent, body = asgi_call("/centrifugo/publish", secret, Untouched())
        assert status == 200  # what Centrifugo relays to the client: 1503, temporary (any 5xx is error 100)
        assert json.loads(body) == {
            "error": {"code": 1503, "message": "busy: too many request bytes in flight, retry later", "temporary": True}
        }
        status, _, _ = asgi_call("/admin/login/", {"Content-Length": "101"}, Untouched())
        assert status == 503
    finally:
        in_flight.held = 0


def test_issue9_item4_every_read_body_is_handed_back(call: Call, redis_url: str) -> None:
    from realtime.request_body import in_flight

    for kind in KINDS:
        call(kind, body_with_data(b'{"x": 1}'))
        call(kind, b"\xff")
    assert in_flight.held == 0


@pytest.mark.parametrize("kind", ["publish", "connect", "rpc"])
def test_issue9_item2_deep_data_in_b64data_is_a_107(call: Call, kind: str) -> None:
    """With binary_encoding Centrifugo sends a client's data base64-encoded, flat in the body: the
    nesting limit applies to the decoded data (63, what `data` may nest inside a body)."""
    body = {"user": "42", "channel": "chat:room1", "method": "history", "encoding": "binary"}
    too_deep = {**body, "b64data": base64.b64encode(nested(64)).decode()}
    assert call(kind, too_deep) == (
        200,
        {"error": {"code": 107, "message": "bad request: JSON nested deeper than 63 levels"}},
    )
    # Binary bytes full of brackets are not text: no nesting limit (the channel rule decides).
    binary = {**body, "b64data": base64.b64encode(b"[" * 5000 + b"\xff").decode()}
    status, answer = call(kind, binary)
    assert status == 200
    assert answer.get("error", {}).get("message") != "bad request: JSON nested deeper than 63 levels"
