from __future__ import annotations

import base64
import time

import pytest
import redis

from callbacks.tests.conftest import CLIENT_ID, Call
from partitions import models, services
from partitions.rules import stable_partition

pytestmark = pytest.mark.django_db


def test_it_stores_the_publication_and_returns_the_stream_id_as_tags(call: Call, redis_client: redis.Redis) -> None:
    before = int(time.time() * 1000)
    status, body = call("publish", {"user": "42", "channel": "chat:room1", "data": {"text": "hi", "n": 1}})

    assert status == 200
    tags = body["result"]["tags"]
    partition = stable_partition("chat:room1", 8)
    assert tags["partition"] == str(partition)
    assert tags["stream"] == f"rtgw:stream:{{chat:{partition}}}"
    entries = redis_client.xrange(tags["stream"])
    assert [entry_id for entry_id, _ in entries] == [tags["stream_id"]]
    fields = entries[0][1]
    assert fields["channel"] == "chat:room1"
    assert fields["user"] == "42"
    assert fields["client"] == CLIENT_ID
    assert fields["data"] == '{"text": "hi", "n": 1}'  # the JSON bytes as Centrifugo sent them
    assert before <= int(fields["ts"]) <= int(time.time() * 1000)


def test_the_same_channel_always_lands_in_the_same_partition(call: Call, redis_client: redis.Redis) -> None:
    streams = {
        call("publish", {"user": "42", "channel": "chat:abc", "data": i})[1]["result"]["tags"]["stream"]
        for i in range(5)
    }
    assert len(streams) == 1
    assert redis_client.xlen(streams.pop()) == 5


def test_binary_publications_are_stored_decoded(call: Call, redis_url: str) -> None:
    rule = models.ChannelRule.objects.get(pattern="chat:*")
    rule.allow_binary = True
    services.rule_save(actor="test", rule=rule)
    raw = redis.Redis.from_url(redis_url)
    status, body = call(
        "publish", {"user": "42", "channel": "chat:bin", "b64data": base64.b64encode(b"\x00\xffbin").decode()}
    )
    assert status == 200
    [(_, fields)] = raw.xrange(body["result"]["tags"]["stream"])
    assert fields[b"data"] == b"\x00\xffbin"
    assert fields[b"enc"] == b"binary"


def test_bad_base64_is_a_bad_request(call: Call, redis_url: str) -> None:
    assert call("publish", {"user": "42", "channel": "chat:bin", "b64data": "***"}) == (
        200,
        {"error": {"code": 107, "message": "b64data is not valid base64"}},
    )


def test_it_denies_publish_without_a_matching_rule(call: Call, redis_client: redis.Redis) -> None:
    status, body = call("publish", {"user": "42", "channel": "secret:x", "data": {}})
    assert (status, body) == (200, {"error": {"code": 103, "message": "permission denied"}})
    assert redis_client.keys("*") == []


def test_anonymous_users_cannot_publish_to_public(call: Call, redis_client: redis.Redis) -> None:
    _status, body = call("publish", {"user": "", "channel": "public:news", "data": {}})
    assert body == {"error": {"code": 103, "message": "permission denied"}}
    assert redis_client.keys("*") == []


def test_a_payload_over_the_rule_limit_is_refused(call: Call, redis_client: redis.Redis) -> None:
    rule = models.ChannelRule.objects.get(pattern="chat:*")
    rule.max_payload_bytes = 16
    services.rule_save(actor="test", rule=rule)
    _status, body = call("publish", {"user": "42", "channel": "chat:x", "data": {"text": "x" * 20}})
    assert body == {"error": {"code": 106, "message": "publication data is 32 bytes; the limit is 16"}}
    assert redis_client.keys("*") == []


def test_a_partition_rule_that_does_not_store_skips_the_write(call: Call, redis_client: redis.Redis) -> None:
    services.rule_save(
        actor="test", rule=models.PartitionRule(pattern="chat:ephemeral:*", stream="ephemeral", store=False)
    )
    status, body = call("publish", {"user": "42", "channel": "chat:ephemeral:1", "data": {}})
    assert (status, body) == (200, {"result": {}})
    assert redis_client.keys("*") == []


def test_redis_down_gives_a_temporary_error_not_ok(call: Call, settings: object) -> None:
    from realtime.redis import reset_redis
    from tests.support.procs import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # type: ignore[attr-defined]
    reset_redis()
    try:
        status, body = call("publish", {"user": "42", "channel": "chat:room1", "data": {}})
    finally:
        reset_redis()
    assert status == 200
    message = "message store did not confirm the write (it may still be stored); retry with the same idempotency key"
    assert body == {"error": {"code": 1503, "message": message, "temporary": True}}


def test_publish_does_not_query_the_database(call: Call, redis_url: str, django_assert_num_queries: object) -> None:
    call("publish", {"user": "42", "channel": "chat:warm", "data": {}})  # loads the rule set once
    with django_assert_num_queries(0):  # type: ignore[operator]
        _status, body = call("publish", {"user": "42", "channel": "chat:room1", "data": {}})
    assert "result" in body


def test_an_outage_is_logged_once_per_interval_with_a_count_not_once_per_publish(
    call: Call, settings: object, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callbacks import publishing
    from realtime.redis import reset_redis
    from tests.support.procs import free_port

    monkeypatch.setattr(publishing, "_outage_log", publishing._OutageLog())
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # type: ignore[attr-defined]
    reset_redis()
    try:
        for _ in range(5):
            assert call("publish", {"user": "42", "channel": "chat:room1", "data": {}})[1]["error"]["code"] == 1503
        lines = [r.getMessage() for r in caplog.records if "publish not stored" in r.getMessage()]
        assert len(lines) == 1
        monkeypatch.setattr(publishing._OutageLog, "LOG_EVERY", 0.0)
        call("publish", {"user": "42", "channel": "chat:room1", "data": {}})
    finally:
        reset_redis()
    lines = [r.getMessage() for r in caplog.records if "publish not stored" in r.getMessage()]
    assert len(lines) == 2
    assert lines[1].endswith("(and 4 more since the last report)")
