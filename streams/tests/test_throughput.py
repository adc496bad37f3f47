"""Issue 13, item 4: the message-log plot — samples of entries added and group lag (one worker per
interval takes each), the series drawn from them, and the SVG on the admin's stream pages, on one
Redis, Sentinel and a Redis Cluster."""

from __future__ import annotations

import re

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client

from partitions.store import rules_store
from realtime.redis import get_redis
from streams.catalog import stream_specs_of
from streams.plot import plot_svg
from streams.throughput import Sample, capacity, sample_once, samples_key, samples_of, series_of
from streams.writer import stream_append

pytestmark = pytest.mark.django_db

T0 = 1_764_576_000.0  # a slot boundary for every interval used here


@pytest.fixture(autouse=True)
def _fresh_rules() -> None:
    rules_store.invalidate()


def publish(channel: str, count: int) -> None:
    target = rules_store.current().target(channel=channel, user="alice")
    for _ in range(count):
        stream_append(target=target, channel=channel, user="alice", client="c1", data=b'{"n": 1}')


def chat_keys() -> list[str]:
    [spec] = [s for s in stream_specs_of(rules_store.current()) if s.name == "chat"]
    return spec.keys


@pytest.mark.parametrize("topology", ["redis_url", "sentinel_url", "cluster_url"])
def test_issue13_item4_samples_give_published_per_minute_and_group_lag_on_every_redis_kind(
    topology: str, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue(topology)
    client = get_redis()
    publish("chat:room1", 3)
    publish("chat:room2", 2)
    for key in chat_keys():  # a group on every partition that has read everything: no lag yet
        client.xgroup_create(key, "billing", id="0", mkstream=True)
        client.xreadgroup("billing", "w1", {key: ">"})
    assert sample_once(interval=60, now=T0)
    # Another worker of the same slot (any replica) takes no second sample.
    assert not sample_once(interval=60, now=T0 + 20)
    publish("chat:room1", 6)
    publish("chat:room3", 6)
    assert sample_once(interval=60, now=T0 + 90)  # the next slot, a minute and a half later
    samples = samples_of("chat", now=T0 + 91)
    assert [s.added for s in samples] == [5, 17]
    series = series_of(samples)
    assert series.times == [T0 + 90]
    assert series.published_per_minute == [8.0]  # 12 entries in 90 s
    assert series.lag == {"billing": [12]}
    assert samples_of("default", now=T0 + 91)[-1] == Sample(t=T0 + 90, added=0, lag={})


def test_issue13_item4_the_lists_are_capped_to_an_hour_and_old_samples_are_not_shown(redis_url: str) -> None:
    interval = 600
    for i in range(12):
        assert sample_once(interval=interval, now=T0 + i * interval)
    raw = redis.Redis.from_url(redis_url).lrange(samples_key("chat"), 0, -1)
    assert len(raw) == capacity(interval) == 7
    assert [s.t for s in samples_of("chat", now=T0 + 11 * interval)] == [T0 + i * interval for i in range(5, 12)]
    # a second later the oldest is more than an hour old
    assert [s.t for s in samples_of("chat", now=T0 + 11 * interval + 1)] == [T0 + i * interval for i in range(6, 12)]


def test_issue13_item4_a_count_that_goes_back_leaves_a_gap_not_a_negative_rate() -> None:
    samples = [Sample(t=T0, added=100, lag={"g": 5}), Sample(t=T0 + 60, added=10, lag={"g": None}),
               Sample(t=T0 + 120, added=70, lag={"g": 1})]  # fmt: skip
    series = series_of(samples)
    assert series.published_per_minute == [None, 60.0]
    assert series.lag == {"g": [None, 1]}


def test_issue13_item4_the_svg_draws_both_panels_and_escapes_group_names() -> None:
    samples = [Sample(t=T0 + 60 * i, added=100 * i * i, lag={"<b>g</b>": i}) for i in range(4)]
    svg = str(plot_svg(series_of(samples), now=T0 + 180, stream="chat"))
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    published = re.search(r'<path class="published" d="([^"]*)"', svg)
    assert published
    assert published[1].count("L") == 2
    assert 'data-group="&lt;b&gt;g&lt;/b&gt;"' in svg
    assert "<b>g</b>" not in svg
    assert "500" in svg  # the peak rate (entries 400 -> 900 in a minute) labels the axis
    empty = str(plot_svg(series_of([]), now=T0, stream="chat"))
    assert "No samples yet" in empty
    assert "No consumer groups." in empty


def test_issue13_item4_the_stream_pages_show_the_plot(client: Client, redis_url: str) -> None:
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    publish("chat:room1", 2)
    assert sample_once(interval=60, now=T0)
    publish("chat:room1", 3)
    assert sample_once(interval=60, now=T0 + 60)
    page = client.get("/admin/streams/").content.decode()
    assert re.search(r'id="throughput-chat"><h3>chat</h3><svg [^>]*class="throughput-plot"', page)
    detail = client.get("/admin/streams/chat/").content.decode()
    assert 'id="throughput-chat"><svg' in detail
