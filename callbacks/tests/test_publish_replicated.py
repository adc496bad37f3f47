"""REDIS_ACK=replicated on the publish fast path: a publication Redis could not confirm on enough
replicas is answered 1503 (temporary), never ok."""

from __future__ import annotations

import pytest
import redis

from callbacks.tests.conftest import Call

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("call", ["asgi"], indirect=True)
def test_issue11_item3_a_publish_without_enough_replicas_is_a_1503(
    call: Call, redis_client: redis.Redis, settings: object
) -> None:
    settings.REDIS_ACK = "replicated"  # type: ignore[attr-defined]
    settings.REDIS_ACK_REPLICAS = 1  # type: ignore[attr-defined]  # the test Redis has no replica
    status, body = call("publish", {"user": "42", "channel": "chat:room1", "data": {"text": "hi"}})
    assert status == 200
    assert body["error"]["code"] == 1503
    assert body["error"]["temporary"] is True
    # Not a false "not stored" either: the entry is on the master (the message says it may be stored).
    assert sum(redis_client.xlen(key) for key in redis_client.keys("rtgw:stream:*")) == 1


@pytest.mark.parametrize("call", ["asgi"], indirect=True)
def test_issue11_item3_local_mode_acknowledges_as_before(
    call: Call, redis_client: redis.Redis, settings: object
) -> None:
    settings.REDIS_ACK = "local"  # type: ignore[attr-defined]
    _status, body = call("publish", {"user": "42", "channel": "chat:room1", "data": {"text": "hi"}})
    assert "result" in body
