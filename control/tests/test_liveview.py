"""Issue 13, item 4: the admin's live view — who may open it, the tokens it issues, the audit entry,
where the browser finds Centrifugo, and the joins/leaves/presence endpoint it polls (real Redis;
Centrifugo's server API is replaced by its exact answers)."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from django.contrib.auth.models import User
from django.test import Client

from control import liveview
from control.models import AuditEntry, IssuedToken
from partitions import models, services
from partitions.store import rules_store
from streams.joinleave import Member, member_seen, reap

pytestmark = pytest.mark.django_db

PAGE = "/admin/live/"
SECRET = "test-hmac-key-0123456789abcdef-0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_rules(settings: Any) -> None:
    settings.CENTRIFUGO_TOKEN_HMAC_SECRET_KEY = SECRET
    rules_store.invalidate()


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(User.objects.create_user("watcher", "w@example.com", "pw-for-tests-only", is_staff=True))
    return client


@pytest.fixture
def presence(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def answer(method: str, body: dict[str, Any]) -> dict[str, Any]:
        calls.append((method, body))
        return {"result": {"num_clients": 3, "num_users": 2}}

    monkeypatch.setattr(liveview, "centrifugo_call", answer)
    return calls


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, SECRET, algorithms=["HS256"])


def config_of(page: str) -> dict[str, Any]:
    start = page.index('<script id="live-config" type="application/json">') + len(
        '<script id="live-config" type="application/json">'
    )
    return dict(json.loads(page[start : page.index("</script>", start)]))


def test_issue13_item4_anonymous_is_sent_to_the_admin_login(client: Client) -> None:
    response = client.get(PAGE, {"channel": "chat:room1"})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/live/")
    assert client.get("/admin/live/events/", {"channel": "chat:room1"}).status_code == 403
    assert client.post("/admin/live/token/", {"channel": "chat:room1", "kind": "connection"}).status_code == 403
    assert not AuditEntry.objects.exists()


def test_issue13_item4_a_signed_in_user_who_is_not_staff_gets_403(client: Client) -> None:
    client.force_login(User.objects.create_user("player", "p@example.com", "pw-for-tests-only"))
    assert client.get(PAGE, {"channel": "chat:room1"}).status_code == 403
    assert client.get("/admin/live/events/", {"channel": "chat:room1"}).status_code == 403
    assert client.post("/admin/live/token/", {"channel": "chat:room1", "kind": "connection"}).status_code == 403
    assert not AuditEntry.objects.exists()


def test_issue13_item4_staff_get_tokens_for_the_channel_and_the_opening_is_audited(
    staff: Client, settings: Any
) -> None:
    settings.LIVE_VIEW_TOKEN_TTL = 120
    # No token without the page: every channel a staff user watches is in the audit trail.
    refused = staff.post("/admin/live/token/", {"channel": "chat:room1", "kind": "subscription"})
    assert refused.status_code == 403
    response = staff.get(PAGE, {"channel": "chat:room1"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/control/vendor/centrifuge.js" in page
    config = config_of(page)
    user = str(User.objects.get(username="watcher").pk)
    connection, subscription = claims(config["tokens"]["connection"]), claims(config["tokens"]["subscription"])
    assert connection["sub"] == user
    assert "channel" not in connection
    assert connection["exp"] - connection["iat"] == 120
    assert subscription["sub"] == user
    assert subscription["channel"] == "chat:room1"
    assert subscription["exp"] - subscription["iat"] == 120
    # The watcher is not one of the channel's members: no presence, no join/leave of its own.
    assert subscription["override"] == {"presence": {"value": False}, "join_leave": {"value": False}}
    [entry] = AuditEntry.objects.filter(action="liveview.opened")
    assert (entry.actor, entry.target, entry.detail) == ("watcher", "chat:room1", {"ttl": 120})
    # Both tokens are recorded like any issued token (revocable on the Tokens page), never stored.
    issued = {t.jti: (t.kind, t.user, t.channel, t.ttl, t.issued_by) for t in IssuedToken.objects.all()}
    assert issued == {connection["jti"]: ("connection", user, "", 120, "watcher"),
                      subscription["jti"]: ("subscription", user, "chat:room1", 120, "watcher")}  # fmt: skip
    # The page's getToken callbacks: fresh tokens of each kind, recorded, the opening not audited again.
    fresh = staff.post("/admin/live/token/", {"channel": "chat:room1", "kind": "subscription"})
    assert claims(fresh.json()["token"])["channel"] == "chat:room1"
    assert AuditEntry.objects.filter(action="liveview.opened").count() == 1
    assert IssuedToken.objects.filter(jti=claims(fresh.json()["token"])["jti"]).exists()
    assert staff.post("/admin/live/token/", {"channel": "chat:room2", "kind": "subscription"}).status_code == 403


def test_issue13_item4_the_websocket_url_is_the_admin_host_on_centrifugos_port_unless_set(
    staff: Client, settings: Any
) -> None:
    settings.CENTRIFUGO_PORT = 8123
    settings.ALLOWED_HOSTS = ["gw.example.com", "testserver"]
    page = staff.get(PAGE, {"channel": "chat:room1"}, HTTP_HOST="gw.example.com:3000").content.decode()
    assert config_of(page)["websocketUrl"] == "ws://gw.example.com:8123/connection/websocket"
    page = staff.get(PAGE, {"channel": "chat:room1"}, HTTP_HOST="gw.example.com", secure=True).content.decode()
    assert config_of(page)["websocketUrl"] == "wss://gw.example.com:8123/connection/websocket"
    settings.LIVE_VIEW_WEBSOCKET_URL = "wss://rt.example.com/connection/websocket"
    page = staff.get(PAGE, {"channel": "chat:room1"}).content.decode()
    assert config_of(page)["websocketUrl"] == "wss://rt.example.com/connection/websocket"


def test_issue13_item4_a_channel_nobody_can_subscribe_to_is_refused_with_the_reason(staff: Client) -> None:
    response = staff.get(PAGE, {"channel": "chat:\x01"})
    assert response.status_code == 400
    assert "channel contains control characters" in response.content.decode()
    assert staff.get("/admin/live/events/", {"channel": ""}).json() == {"error": "channel is empty"}
    assert staff.get("/admin/live/events/", {"channel": "chat:a", "cursor": "[1"}).status_code == 400
    bad = staff.get("/admin/live/events/", {"channel": "chat:a", "cursor": '{"k": "0-0; FLUSHALL"}'})
    assert bad.status_code == 400
    assert staff.post("/admin/live/token/", {"channel": "chat:a", "kind": "admin"}).status_code == 400
    assert not AuditEntry.objects.exists()


def test_issue13_item4_events_give_joins_and_leaves_from_the_log_and_the_presence_count(
    staff: Client, redis_url: str, presence: list[tuple[str, dict[str, Any]]]
) -> None:
    rule = models.ChannelRule.objects.get(pattern="chat:*")
    rule.log_join_leave = True
    services.rule_save(rule=rule, actor="operator")
    rules_store.invalidate()
    first = staff.get("/admin/live/events/", {"channel": "chat:room1"}).json()
    assert first["join_leave"] is True
    assert first["events"] == []
    assert first["presence"] == {"num_clients": 3, "num_users": 2}
    assert presence == [("presence_stats", {"channel": "chat:room1"})]
    target = rules_store.current().target(channel="chat:room1", user="42")
    member_seen(Member(target=target, channel="chat:room1", user="42", client="c1"), joining=True)
    member_seen(Member(target=target, channel="chat:other", user="43", client="c2"), joining=True)  # not watched
    answer = staff.get("/admin/live/events/", {"channel": "chat:room1", "cursor": json.dumps(first["cursor"])}).json()
    assert [(e["type"], e["user"], e["client"]) for e in answer["events"]] == [("join", "42", "c1")]
    # The member's heartbeat stops: the reaper writes its leave, and the next poll shows only that.
    from realtime.redis import get_redis
    from streams.joinleave import members_key

    get_redis().zadd(members_key(target.stream, target.partition), {'["chat:room1","42","c1"]': 1}, xx=True)
    assert reap(target.stream, target.partition) == 1
    again = staff.get("/admin/live/events/", {"channel": "chat:room1", "cursor": json.dumps(answer["cursor"])}).json()
    assert [(e["type"], e["user"]) for e in again["events"]] == [("leave", "42")]


def test_issue13_item4_events_say_when_the_channels_rule_logs_no_joins(
    staff: Client, redis_url: str, presence: list[tuple[str, dict[str, Any]]]
) -> None:
    answer = staff.get("/admin/live/events/", {"channel": "chat:room1"}).json()
    assert (answer["join_leave"], answer["events"], answer["cursor"]) == (False, [], {})


def test_issue13_item4_the_admin_index_links_the_live_view_and_its_form_opens_nothing(staff: Client) -> None:
    assert 'href="/admin/live/"' in staff.get("/admin/").content.decode()
    page = staff.get(PAGE)
    assert page.status_code == 200
    assert '<form method="get" action="/admin/live/"' in page.content.decode()
    assert "live-config" not in page.content.decode()
    assert not AuditEntry.objects.exists()
    assert not IssuedToken.objects.exists()


@pytest.mark.parametrize("topology", ["redis_url", "sentinel_url", "cluster_url"])
def test_issue13_item4_joins_and_leaves_are_read_on_every_redis_kind(
    topology: str, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue(topology)
    from partitions.rules import StreamTarget
    from streams.writer import stream_key

    keys = [stream_key("rooms", p) for p in range(8)]  # a Cluster spreads them over its three masters
    first = liveview.join_leave_read(keys, {}, "room:a")
    assert (first.events, sorted(first.cursor)) == ([], sorted(keys))
    for p in range(8):  # a partition rule keyed by user: one channel's joins in every partition
        target = StreamTarget("rooms", p, 1000, True, None)
        member_seen(Member(target=target, channel="room:a", user=f"u{p}", client=f"c{p}"), joining=True)
        member_seen(Member(target=target, channel="room:b", user=f"v{p}", client=f"d{p}"), joining=True)
    read = liveview.join_leave_read(keys, first.cursor, "room:a")
    assert sorted(e["user"] for e in read.events) == [f"u{p}" for p in range(8)]
    assert liveview.join_leave_read(keys, read.cursor, "room:a").events == []
