"""Issue 9, item 5: every reader survives any stored entry — binary ones, and legacy entries whose
fields are not what the writer writes today (invalid UTF-8 data without enc=binary, a bad ts, a
channel that is not UTF-8) — and one entry a handler always fails on cannot stall a consumer."""

from __future__ import annotations

import base64
import json
from io import StringIO

import pytest
import redis
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from partitions.store import rules_store
from streams.catalog import StreamSpec
from streams.consumer import GroupConsumer, print_handler
from streams.process import blocking_redis
from streams.reader import Message, message_from_entry
from streams.tail import format_line

SPEC = StreamSpec("jobs", 1)
LEGACY = {b"channel": b"jobs:\xff", b"user": b"u1", b"client": b"c1", b"data": b'"\xff\xfe"', b"ts": b"soon"}
BINARY = {b"channel": b"jobs:b", b"user": b"u1", b"client": b"c1", b"data": b"\x01\xff\x00", b"ts": b"7",
          b"enc": b"binary"}  # fmt: skip
ODD = [LEGACY, BINARY, {b"data": b"\x01"}, {b"channel": b"jobs:x", b"data": b""}, {}]


@pytest.mark.parametrize("fields", ODD)
def test_issue9_item5_any_entry_becomes_a_message_that_prints_as_one_json_line(
    fields: dict[bytes, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    message = message_from_entry("rtgw:stream:{jobs:0}", b"5-0", fields)
    print_handler(message)
    line = capsys.readouterr().out
    shown = json.loads(line)
    if fields.get(b"data", b"") != b"":
        assert base64.b64decode(shown["b64data"]) == fields[b"data"]
    assert "\n" not in format_line(message)  # stream_tail's line


def test_issue9_item5_a_legacy_entry_is_shown_as_base64_not_as_json() -> None:
    message = message_from_entry("k", b"5-0", LEGACY)
    assert message.binary
    assert message.as_json()["b64data"] == base64.b64encode(b'"\xff\xfe"').decode()
    assert (message.channel, message.ts) == ("jobs:\ufffd", 0)
    json_entry = message_from_entry("k", b"5-0", {b"data": b'{"n": 1}'})
    assert not json_entry.binary
    assert json.loads(bytes(json_entry.as_json()["data"])) == {"n": 1}  # type: ignore[call-overload]


def consumer(handler: object, **tuning: object) -> GroupConsumer:
    return GroupConsumer(
        client=blocking_redis(block_ms=50), group="g", consumer="a", keys=lambda: SPEC.keys,
        handler=handler, batch=5, block_ms=50, **tuning,  # type: ignore[arg-type]
    )  # fmt: skip


def test_issue9_item5_the_default_consumer_handles_legacy_and_binary_entries(
    redis_client: redis.Redis, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = redis.Redis.from_url(redis_url)
    for fields in (LEGACY, BINARY):
        raw.xadd(SPEC.keys[0], fields)  # type: ignore[arg-type]
    counts = consumer(print_handler, max_messages=2).run()
    assert (counts.processed, counts.failed) == (2, 0)
    assert int(redis_client.xpending(SPEC.keys[0], "g")["pending"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [base64.b64decode(line["b64data"]) for line in lines] == [b'"\xff\xfe"', b"\x01\xff\x00"]


def test_issue9_item5_a_poison_entry_is_dead_lettered_after_max_deliveries(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    raw = redis.Redis.from_url(redis_url)
    key = SPEC.keys[0]
    ids = [raw.xadd(key, {"channel": "jobs:1", "data": json.dumps({"n": n}), "ts": "1"}) for n in range(3)]
    poison = ids[1]
    seen: list[bytes] = []

    def handler(message: Message) -> None:
        if message.id == poison.decode():
            raise ValueError("cannot handle this one")
        seen.append(message.id.encode())

    c = consumer(handler, claim_idle_ms=20, max_deliveries=3)
    c.refresh_keys()
    for _ in range(200):  # each reclaim delivers the poison entry once more; 3 deliveries suffice
        if c.counts.dead:
            break
        c.run_once()
    assert c.counts.dead == 1, c.counts
    assert (c.counts.processed, c.counts.failed) == (2, 3)
    assert sorted(seen) == sorted([ids[0], ids[2]])
    assert int(raw.xpending(key, "g")["pending"]) == 0  # acked: nothing stalls
    assert key == "rtgw:stream:{jobs:0}"
    [(_, dead)] = raw.xrange("rtgw:dead:{jobs:0}")
    assert dead[b"data"] == b'{"n": 1}'
    assert dead[b"channel"] == b"jobs:1"
    assert (dead[b"group"], dead[b"consumer"], dead[b"orig_id"], dead[b"deliveries"]) == (b"g", b"a", poison, b"3")
    assert dead[b"error"] == b"ValueError: cannot handle this one"
    assert "moved to rtgw:dead:{jobs:0} and acked" in caplog.text
    assert c.counts.summary() == "processed 2, failed 3 (reclaimed 2), dead-lettered 1"


def test_issue9_item5_stream_consume_takes_max_deliveries(redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url)
    raw.xadd(SPEC.keys[0], LEGACY)  # type: ignore[arg-type]
    out, err = StringIO(), StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", out)
        call_command("stream_consume", "--group", "g", "--stream", "jobs", "--partitions", "1", "--max-messages", "1",
                     "--block-ms", "100", "--max-deliveries", "2", stderr=err)  # fmt: skip
    assert err.getvalue().strip() == "processed 1, failed 0 (reclaimed 0), dead-lettered 0"
    assert base64.b64decode(json.loads(out.getvalue())["b64data"]) == b'"\xff\xfe"'


@pytest.mark.django_db
def test_issue9_item5_the_admin_shows_legacy_and_binary_entries(client: Client, redis_url: str) -> None:
    rules_store.invalidate()
    target = rules_store.current().target(channel="chat:room1", user="alice")
    key = f"rtgw:stream:{{chat:{target.partition}}}"
    raw = redis.Redis.from_url(redis_url)
    raw.xadd(key, {**LEGACY, b"channel": b"chat:\xff"})  # type: ignore[arg-type]
    raw.xadd(key, {**BINARY, b"channel": b"chat:room1"})  # type: ignore[arg-type]
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    response = client.get("/admin/streams/chat/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "b64:" + base64.b64encode(b"\x01\xff\x00").decode() in page
    assert "b64:" + base64.b64encode(b'"\xff\xfe"').decode() in page
