"""A Redis Cluster that cannot be reached makes redis-py raise RedisClusterException, which is not
a RedisError: every caller must still answer its temporary error (1503, 503), never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from partitions.rules import StreamTarget
from realtime.redis import reset_redis
from streams.writer import StreamUnavailable, rate_limit_hit, stream_append
from tests.support.procs import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_cluster(settings: Any) -> Any:
    settings.REDIS_URL = f"redis+cluster://127.0.0.1:{free_port()}?addr=127.0.0.1:{free_port()}"
    reset_redis()
    yield settings
    reset_redis()


def test_issue11_item1_append_and_rate_limit_are_temporary_errors(dead_cluster: Any) -> None:
    target = StreamTarget("chat", 0, None, True, None)
    with pytest.raises(StreamUnavailable, match="RedisClusterException"):
        stream_append(target=target, channel="c", user="u", client="x", data=b"1")
    with pytest.raises(StreamUnavailable):
        rate_limit_hit(rule_id=1, who="u", limit=1, window=1)


def test_issue11_health_an_unreachable_cluster_is_a_503_not_a_500(dead_cluster: Any, client: Client) -> None:
    response = client.get("/health")
    assert response.status_code == 503
    redis_check = json.loads(response.content)["checks"]["redis"]
    assert redis_check["error"].startswith("RedisClusterException: Redis Cluster cannot be connected")


def test_issue11_item1_server_api_and_admin_answer_an_unreachable_cluster(dead_cluster: Any, client: Client) -> None:
    dead_cluster.GATEWAY_API_KEY = "k"
    response = client.post(
        "/api/publish", data=json.dumps({"channel": "chat:x", "data": 1}), content_type="application/json",
        headers={"Authorization": "Api-Key k"},
    )  # fmt: skip
    assert (response.status_code, json.loads(response.content)["error"]["code"]) == (503, 1503)
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    page = client.get("/admin/streams/")
    assert page.status_code == 200
    assert "Redis did not answer" in page.content.decode()
