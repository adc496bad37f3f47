"""Worker.publish: the server publish path (rules, the log, Centrifugo's broadcast), idempotent when
a handler runs again. Centrifugo is replaced by a recorder here; tests/e2e/test_workers.py has the
real one."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from streams.reader import message_from_entry
from workers.sdk import Dispatch, Message, PublishError, Worker

pytestmark = pytest.mark.django_db


class Replier(Worker):
    group = "g"
    fail_after_publish = True

    def on_message(self, channel: str, message: Message) -> None:
        self.publish("chat:answers", {"to": message.id})
        if self.fail_after_publish:
            self.fail_after_publish = False
            raise RuntimeError("crashed after publishing")


@pytest.fixture
def broadcasts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    def record(**call: Any) -> dict[str, Any]:
        sent.append(call)
        return {}

    monkeypatch.setattr("callbacks.server_api.centrifugo_publish", record)
    return sent


def test_issue12_item1_a_handler_run_again_publishes_once(redis_url: str, broadcasts: list[dict[str, Any]]) -> None:
    raw = redis.Redis.from_url(redis_url)
    entry = message_from_entry("rtgw:stream:{jobs:0}", "7-1", {b"channel": b"chat:q", b"data": b"{}"})
    dispatch = Dispatch(Replier(name="w1"))
    with pytest.raises(RuntimeError):
        dispatch.message(entry)
    dispatch.message(entry)  # the retry of the same entry
    stored = [(k, e) for k in raw.scan_iter("rtgw:stream:*") for e in raw.xrange(k)]
    assert len(stored) == 1, stored
    [(_, (entry_id, fields))] = stored
    assert (fields[b"channel"], fields[b"data"], fields[b"client"]) == (b"chat:answers", b'{"to":"7-1"}', b"worker:w1")
    assert fields[b"user"] == b"server"  # SERVER_API_USER, under the same rules as the server API
    # Both broadcasts carry the same Centrifugo idempotency key, so subscribers get it once.
    assert len(broadcasts) == 2
    assert broadcasts[0]["idempotency_key"] == broadcasts[1]["idempotency_key"] != ""
    assert broadcasts[0]["tags"]["stream_id"] == broadcasts[1]["tags"]["stream_id"] == entry_id.decode()


def test_issue12_item1_publish_is_refused_by_the_rules_as_a_server_publish_would_be(
    redis_url: str, broadcasts: list[dict[str, Any]]
) -> None:
    with pytest.raises(PublishError) as refused:
        Replier(name="w1").publish("secret:x", {"x": 1})
    assert (refused.value.code, refused.value.temporary) == (103, False)
    assert broadcasts == []
