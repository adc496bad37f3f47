from __future__ import annotations

import re

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client

from partitions.store import rules_store
from streams.writer import stream_append

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rules() -> None:
    rules_store.invalidate()


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    return client


@pytest.fixture
def stored(redis_url: str) -> str:
    """One message in the chat stream, with markup in its data; returns its id."""
    target = rules_store.current().target(channel="chat:room1", user="alice")
    return stream_append(
        target=target, channel="chat:room1", user="alice", client="c1", data=b'{"text": "<b>hi</b>"}'
    ).entry_id


def test_the_list_shows_every_stream_with_its_partitions_and_length(operator: Client, stored: str) -> None:
    page = operator.get("/admin/streams/").content.decode()
    for name in ("chat", "public", "default"):
        assert f'<a href="/admin/streams/{name}/">{name}</a>' in page
    # chat: 8 partitions, 1 entry, no consumer groups
    assert re.search(r'"/admin/streams/chat/">chat</a></td>\s*<td>8</td>\s*<td>1</td>\s*<td>—</td>', page)


def test_the_detail_shows_recent_messages_escaped_and_the_consumer_groups(
    operator: Client, stored: str, redis_client: redis.Redis
) -> None:
    key = rules_store.current().target(channel="chat:room1", user="alice")
    redis_client.xgroup_create(f"rtgw:stream:{{chat:{key.partition}}}", "billing", id="0")
    response = operator.get("/admin/streams/chat/")
    page = response.content.decode()
    assert response.status_code == 200
    assert stored in page
    assert "<td>chat:room1</td><td>alice</td>" in page
    assert "&lt;b&gt;hi&lt;/b&gt;" in page
    assert "<b>hi</b>" not in page
    assert "<td>billing</td>" in page
    assert "Most recent messages (1)" in page


def test_an_unknown_stream_is_not_found(operator: Client, redis_url: str) -> None:
    assert operator.get("/admin/streams/nosuch/").status_code == 404


def test_the_admin_index_links_to_the_streams(operator: Client) -> None:
    assert 'href="/admin/streams/"' in operator.get("/admin/").content.decode()


@pytest.mark.parametrize("url", ["/admin/streams/", "/admin/streams/chat/"])
def test_non_staff_users_are_sent_to_the_login_page(client: Client, url: str) -> None:
    client.force_login(User.objects.create_user("bob", "bob@example.com", "pw-for-tests-only"))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={url}"


def test_staff_who_are_not_superusers_cannot_read_messages(client: Client, stored: str) -> None:
    client.force_login(User.objects.create_user("helpdesk", password="pw-for-tests-only", is_staff=True))
    assert client.get("/admin/streams/").status_code == 200
    assert client.get("/admin/streams/chat/").status_code == 403


def test_issue12_item2_a_workers_dead_letters_show_on_the_stream_page(
    operator: Client, stored: str, redis_url: str
) -> None:
    from streams.process import blocking_redis
    from workers.leases import Leases

    target = rules_store.current().target(channel="chat:room1", user="alice")
    key = f"rtgw:stream:{{chat:{target.partition}}}"
    client = blocking_redis(block_ms=100)
    client.xgroup_create(key, "assistant", id="0")
    client.xreadgroup("assistant", "w1", {key: ">"})
    leases = Leases(client, group="assistant", name="w1", ttl_seconds=5)
    lease = leases.acquire(key)
    assert lease is not None
    [(entry_id, fields)] = client.xrange(key)
    extra = {b"error": "ValueError: <no> good", b"group": "assistant", b"consumer": "w1", b"orig_id": stored,
             b"deliveries": "5"}  # fmt: skip
    assert leases.dead_letter(lease, entry_id, {**fields, **extra}, f"rtgw:dead:{{chat:{target.partition}}}") == 1
    page = operator.get("/admin/streams/chat/").content.decode()
    assert "Dead letters (1 most recent)" in page
    assert (
        f"<td><code>{key}</code></td><td>{stored}</td><td>chat:room1</td><td>assistant</td>\n"
        "      <td>w1</td><td>5</td><td><code>ValueError: &lt;no&gt; good</code></td>"
    ) in page
