from __future__ import annotations

import pytest

from partitions import models, services
from partitions.rules import Action
from partitions.selectors import ruleset_version
from partitions.store import RulesStore, rules_store

pytestmark = pytest.mark.django_db
# These see commits (on_commit hooks, a watcher thread with its own connection); serialized_rollback
# restores the migrations' default rules afterwards for the tests that rely on them.
committed = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@committed
def test_a_rule_change_bumps_the_version_and_this_process_reloads() -> None:
    store = rules_store  # the instance the services invalidate on commit
    store.invalidate()
    before = store.current()
    assert before.decide(Action.SUBSCRIBE, channel="orders:1", user="42").allowed is False

    services.rule_save(actor="test", rule=models.ChannelRule(pattern="orders:*", subscribe_access="authenticated"))

    after = store.current()
    assert after.version == before.version + 1 == ruleset_version()
    assert after.decide(Action.SUBSCRIBE, channel="orders:1", user="42").allowed is True


@committed
def test_the_watcher_picks_up_a_change_made_elsewhere(settings: object) -> None:
    """A change in another process shows up only as a new version row: the poll must catch it."""
    import time

    settings.RULES_WATCH = True  # type: ignore[attr-defined]
    settings.RULES_POLL_INTERVAL = 0.05  # type: ignore[attr-defined]
    store = RulesStore()
    assert store.current().decide(Action.SUBSCRIBE, channel="audit:1", user="42").allowed is False
    # as another process would: write the row and bump the version, without touching `store`
    models.ChannelRule.objects.create(pattern="audit:*", subscribe_access="authenticated")
    models.RuleSetVersion.objects.filter(pk=1).update(version=999)
    try:
        deadline = time.monotonic() + 5
        while store.current().version != 999 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.current().version == 999
        assert store.current().decide(Action.SUBSCRIBE, channel="audit:1", user="42").allowed is True
    finally:
        store.stop()  # joins the watcher: its last poll ends before the test database goes away


def test_disabled_rules_are_not_loaded() -> None:
    rule = models.ChannelRule.objects.get(pattern="chat:*")
    rule.enabled = False
    services.rule_save(actor="test", rule=rule)
    assert RulesStore().current().decide(Action.SUBSCRIBE, channel="chat:1", user="42").allowed is False


def test_deleting_a_rule_bumps_the_version() -> None:
    version = ruleset_version()
    services.rule_delete(actor="test", rule=models.ChannelRule.objects.get(pattern="chat:*"))
    assert ruleset_version() == version + 1


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"pattern": "bad pattern"}, "pattern"),
        ({"pattern": "x:*", "subscribe_access": "users"}, "subscribe_users"),
        ({"pattern": "x:*", "publish_access": "roles"}, "publish_roles"),
        ({"pattern": "x:*", "publish_access": "owner"}, "publish_access"),
    ],
)
def test_invalid_rules_are_refused_with_the_field_named(fields: dict[str, str], error_field: str) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        services.rule_save(actor="test", rule=models.ChannelRule(**fields))
    assert error_field in error.value.message_dict


def test_on_the_event_loop_a_stale_set_is_served_without_touching_the_database(
    django_assert_num_queries: object,
) -> None:
    """Django refuses the database on an event loop; the callback workers' fast path reloads in a
    thread first (callbacks/fastpath.py), and until then the loaded set keeps answering."""
    import asyncio

    store = RulesStore()
    loaded = store.current()
    store.invalidate()

    async def on_the_loop() -> object:
        return store.current()

    with django_assert_num_queries(0):  # type: ignore[operator]
        assert asyncio.run(on_the_loop()) is loaded
    assert store.needs_load
    store.stop()
