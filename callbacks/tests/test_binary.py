"""Binary publications (issue 9, item 5b): the proxies run with binary_encoding, so every payload
arrives as `b64data`; what the bytes are — JSON text or not — decides, and channels are JSON-only
unless their rule allows binary. Readers (item 5) survive any stored entry."""

from __future__ import annotations

import base64
import json

import pytest
import redis

from callbacks.tests.conftest import Call
from callbacks.tokens import connection_token_issue
from partitions import models, services

pytestmark = pytest.mark.django_db

JSON_ONLY_ERROR = {"error": {"code": 107, "message": "this channel accepts JSON publications only"}}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def publish_b64(call: Call, channel: str, data: bytes, user: str = "42") -> tuple[int, dict[str, object]]:
    return call("publish", {"user": user, "channel": channel, "b64data": b64(data), "encoding": "binary"})


def chat_rule(**changes: object) -> None:
    rule = models.ChannelRule.objects.get(pattern="chat:*")
    for name, value in changes.items():
        setattr(rule, name, value)
    services.rule_save(actor="test", rule=rule)


def stored(redis_url: str) -> list[dict[bytes, bytes]]:
    raw = redis.Redis.from_url(redis_url)
    return [fields for key in raw.keys("rtgw:stream:*") for _, fields in raw.xrange(key)]


def test_issue9_item5b_json_bytes_sent_as_b64data_are_stored_as_json(call: Call, redis_url: str) -> None:
    status, body = publish_b64(call, "chat:j", b'{"text":"hi"}')
    assert status == 200
    assert "tags" in body["result"]
    [fields] = stored(redis_url)
    assert fields[b"data"] == b'{"text":"hi"}'
    assert b"enc" not in fields


@pytest.mark.parametrize("data", [b"\x01", b"\x01\xff\x00", b'"\xff"', b'{"a": 1} trailing', b""])
def test_issue9_item5b_binary_on_a_json_only_channel_is_refused_with_107(
    call: Call, redis_url: str, data: bytes
) -> None:
    assert publish_b64(call, "chat:j", data) == (200, JSON_ONLY_ERROR)
    assert stored(redis_url) == []


def test_issue9_item5b_binary_on_an_allow_binary_channel_is_stored_byte_for_byte(call: Call, redis_url: str) -> None:
    chat_rule(allow_binary=True)
    status, body = publish_b64(call, "chat:b", b"\x01\xff\x00")
    assert status == 200
    assert body["result"]["tags"]["stream_id"]
    [fields] = stored(redis_url)
    assert (fields[b"data"], fields[b"enc"]) == (b"\x01\xff\x00", b"binary")


def test_issue9_item5b_binary_on_a_denied_channel_is_103(call: Call, redis_url: str) -> None:
    assert publish_b64(call, "secret:x", b"\x01") == (200, {"error": {"code": 103, "message": "permission denied"}})
    assert publish_b64(call, "chat:x", b"\x01", user="") == (
        200,
        {"error": {"code": 103, "message": "permission denied"}},
    )


def test_issue9_item5b_binary_where_a_schema_is_set_is_refused(call: Call, redis_url: str) -> None:
    chat_rule(publish_schema={"type": "object"})
    assert publish_b64(call, "chat:s", b"\x01\x02") == (200, JSON_ONLY_ERROR)
    assert stored(redis_url) == []


def test_issue9_item5b_a_rule_cannot_allow_binary_and_have_a_schema(db: None) -> None:
    rule = models.ChannelRule(pattern="bin:*", publish_schema={"type": "object"}, allow_binary=True)
    with pytest.raises(Exception, match="Binary data cannot match a JSON Schema"):
        services.rule_save(actor="test", rule=rule)


def test_issue9_item5b_the_size_limit_counts_decoded_bytes(call: Call, redis_url: str) -> None:
    chat_rule(allow_binary=True, max_payload_bytes=3)
    assert publish_b64(call, "chat:z", b"\x01\x02\x03")[0] == 200  # 4 base64 characters, 3 bytes
    assert publish_b64(call, "chat:z", b"\x01\x02\x03\x04") == (
        200,
        {"error": {"code": 106, "message": "publication data is 4 bytes; the limit is 3"}},
    )


@pytest.mark.parametrize("bad", ["***", "AQ", "AQ==\n", "AQ=x"])
def test_issue9_item5b_invalid_base64_is_107(call: Call, redis_url: str, bad: str) -> None:
    assert call("publish", {"user": "42", "channel": "chat:x", "b64data": bad}) == (
        200,
        {"error": {"code": 107, "message": "b64data is not valid base64"}},
    )


def test_issue9_item5b_a_token_in_b64_connect_data_authenticates(call: Call) -> None:
    token = connection_token_issue(user="42", ttl=60, meta={"roles": ["editor"]})
    status, body = call("connect", {"b64data": b64(json.dumps({"token": token}).encode()), "encoding": "binary"})
    assert status == 200
    assert body["result"]["user"] == "42"  # type: ignore[index]
    meta = body["result"]["meta"]  # type: ignore[index]
    assert (meta["roles"], meta["auth"]) == (["editor"], "token")


def test_issue9_item5b_history_rpc_reads_b64_request_data_and_returns_binary_as_b64data(
    call: Call, redis_url: str
) -> None:
    chat_rule(allow_binary=True)
    publish_b64(call, "chat:h", b"\x01\xff\x00")
    publish_b64(call, "chat:h", b'{"n":1}')
    request = b64(json.dumps({"channel": "chat:h"}).encode())
    status, body = call("rpc", {"user": "42", "method": "history", "b64data": request, "encoding": "binary"})
    assert status == 200
    messages = body["result"]["data"]["messages"]  # type: ignore[index]
    assert [(m.get("b64data"), m.get("data")) for m in messages] == [(b64(b"\x01\xff\x00"), None), (None, {"n": 1})]


def test_issue9_item5_history_survives_a_legacy_entry_that_is_not_json(call: Call, redis_url: str) -> None:
    """An entry stored before this rule existed: invalid UTF-8 in `data`, no `enc=binary`."""
    call("publish", {"user": "42", "channel": "chat:l", "data": {"n": 1}})
    raw = redis.Redis.from_url(redis_url)
    [key] = raw.keys("rtgw:stream:*")
    raw.xadd(key, {"channel": "chat:l", "user": "42", "client": "c", "data": b'"\xff\xfe"', "ts": "x"})
    status, body = call("rpc", {"user": "42", "method": "history", "data": {"channel": "chat:l"}})
    assert status == 200
    messages = body["result"]["data"]["messages"]  # type: ignore[index]
    assert messages[0]["data"] == {"n": 1}
    assert messages[1]["b64data"] == b64(b'"\xff\xfe"')
    assert messages[1]["ts"] == 0


def test_issue9_item5b_json_clients_cannot_subscribe_to_a_binary_channel(call: Call) -> None:
    """A JSON-protocol subscriber would be disconnected (1007) by the first binary publication."""
    chat_rule(allow_binary=True)
    json_sub = {"user": "42", "channel": "chat:room1", "protocol": "json", "encoding": "binary"}
    assert call("subscribe", json_sub) == (200, {"error": {"code": 107, "message": (
        "this channel carries binary publications: subscribe with the protobuf protocol")}})  # fmt: skip
    status, body = call("subscribe", {**json_sub, "protocol": "protobuf"})
    assert status == 200
    assert "result" in body
