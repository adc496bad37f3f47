from __future__ import annotations

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client

from partitions import models
from partitions.selectors import ruleset_version
from streams.writer import stream_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    return client


FORM = {
    "pattern": "orders:*", "priority": "100", "enabled": "on", "description": "",
    "subscribe_access": "authenticated", "subscribe_users": "", "subscribe_roles": "",
    "presence": "", "join_leave": "", "force_push_join_leave": "", "force_recovery": "", "force_positioning": "",
    "publish_access": "roles", "publish_users": "", "publish_roles": "writer",
    "max_payload_bytes": "", "publish_schema": "null", "publish_rate_limit": "", "publish_rate_window": "60",
}  # fmt: skip


def test_creating_a_rule_in_the_admin_bumps_the_version_and_is_audited(operator: Client) -> None:
    version = ruleset_version()
    response = operator.post("/admin/partitions/channelrule/add/", FORM)
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert ruleset_version() == version + 1
    change = models.RuleChange.objects.get()
    assert (change.actor, change.action, change.kind, change.pattern) == ("ops", "created", "channel", "orders:*")
    assert change.after["publish_roles"] == "writer"
    audit_page = operator.get("/admin/partitions/rulechange/")
    assert "orders:*" in audit_page.content.decode()


def test_the_admin_refuses_a_rule_with_an_empty_permission_set(operator: Client) -> None:
    response = operator.post("/admin/partitions/channelrule/add/", {**FORM, "publish_roles": ""})
    assert response.status_code == 200
    assert "List at least one role, or pick another publish access." in response.content.decode()
    assert not models.ChannelRule.objects.filter(pattern="orders:*").exists()


def test_the_admin_refuses_an_invalid_schema(operator: Client) -> None:
    response = operator.post("/admin/partitions/channelrule/add/", {**FORM, "publish_schema": '{"type": 5}'})
    assert "Not a valid JSON Schema: 5 is not valid under any of the given schemas" in response.content.decode()


def test_the_admin_warns_when_a_rule_can_never_match(operator: Client) -> None:
    response = operator.post(
        "/admin/partitions/channelrule/add/", {**FORM, "pattern": "chat:vip:*", "priority": "200"}, follow=True
    )
    page = response.content.decode()
    assert "Rule &#x27;chat:vip:*&#x27; can never decide: rule #" in page
    assert "&#x27;chat:*&#x27; comes first" in page
    # at equal priority the longer prefix goes first, so the same rule at 100 is reachable
    response = operator.post("/admin/partitions/channelrule/add/", {**FORM, "pattern": "chat:vip2:*"}, follow=True)
    assert "can never decide" not in response.content.decode()


def test_the_rule_tester_explains_a_decision_and_the_stream(operator: Client) -> None:
    page = operator.get(
        "/admin/partitions/channelrule/tester/", {"user": "42", "channel": "chat:room1", "action": "publish"}
    )
    text = page.content.decode()
    assert "Allowed" in text
    assert "&#x27;chat:*&#x27; lets authenticated users publish" in text
    assert "rtgw:stream:{chat:" in text
    page = operator.get(
        "/admin/partitions/channelrule/tester/", {"user": "", "channel": "secret:x", "action": "subscribe"}
    )
    assert "no rule matches channel &#x27;secret:x&#x27;" in page.content.decode()


def test_the_tester_needs_a_staff_login(client: Client) -> None:
    assert client.get("/admin/partitions/channelrule/tester/").status_code == 302


def test_shrinking_a_stream_with_data_is_refused_with_the_consequence(
    operator: Client, redis_client: redis.Redis
) -> None:
    rule = models.PartitionRule.objects.get(pattern="chat:*")
    redis_client.xadd(stream_key("chat", 6), {"data": "x"})
    form = {"pattern": "chat:*", "priority": "100", "enabled": "on", "stream": "chat", "partitions": "4",
            "key": "channel", "max_length": "100000", "max_age_seconds": "", "store": "on"}  # fmt: skip
    response = operator.post(f"/admin/partitions/partitionrule/{rule.pk}/change/", form)
    text = response.content.decode()
    assert "Stream &#x27;chat&#x27; has 1 entries in partitions 4-7." in text
    assert "per-channel order" in text
    rule.refresh_from_db()
    assert rule.partitions == 8
    redis_client.delete(stream_key("chat", 6))
    assert operator.post(f"/admin/partitions/partitionrule/{rule.pk}/change/", form).status_code == 302
    rule.refresh_from_db()
    assert rule.partitions == 4


def test_deleting_in_the_admin_is_audited(operator: Client) -> None:
    rule = models.ChannelRule.objects.get(pattern="chat:*")
    operator.post(f"/admin/partitions/channelrule/{rule.pk}/delete/", {"post": "yes"})
    assert models.RuleChange.objects.get().action == "deleted"
