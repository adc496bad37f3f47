"""Django's cache and the cached sessions follow REDIS_URL (realtime.cache) on every kind of
Redis: the production CACHES setting, pointed at real Sentinel and Cluster processes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.contrib.sessions.backends.cache import SessionStore
from django.core.cache import cache

from realtime.redis import connect
from realtime.redis_url import parse
from realtime.settings import base


@pytest.fixture(params=["redis_url", "sentinel_url", "cluster_url"])
def redis_cache(request: pytest.FixtureRequest, settings: Any) -> str:
    url: str = request.getfixturevalue(request.param)
    caches = copy.deepcopy(base.CACHES)
    caches["default"]["LOCATION"] = [url]
    settings.CACHES = caches
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    return url


def test_issue11_item1_cache_and_sessions_live_on_the_redis_of_redis_url(redis_cache: str) -> None:
    for i in range(20):  # keys over many cluster slots
        cache.set(f"k{i}", {"n": i}, timeout=60)
    assert [cache.get(f"k{i}") for i in range(20)] == [{"n": i} for i in range(20)]
    session = SessionStore()
    session["user_id"] = 42
    session.save()
    assert SessionStore(session_key=session.session_key)["user_id"] == 42
    # Stored in that Redis, under the cache's prefix (not in a process-local fallback).
    direct = connect(parse(redis_cache), socket_timeout=5)
    try:
        assert direct.exists("rtgw:cache:1:k7") == 1
    finally:
        direct.close()
