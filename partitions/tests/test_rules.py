from __future__ import annotations

import pytest

from partitions.patterns import Pattern
from partitions.rules import (
    Access,
    Action,
    ChannelRule,
    Defaults,
    PartitionKey,
    PartitionRule,
    Permission,
    RuleSet,
    split_ids,
    stable_partition,
)


def rule(
    rule_id: int, pattern: str, *, sub: Permission, pub: Permission | None = None, priority: int = 100
) -> ChannelRule:
    return ChannelRule(
        id=rule_id,
        pattern=Pattern.parse(pattern),
        priority=priority,
        subscribe=sub,
        publish=pub or Permission(Access.NOBODY),
    )


def decide(
    rules: list[ChannelRule], channel: str, user: str, roles: tuple[str, ...] = (), action: Action = Action.SUBSCRIBE
) -> bool:
    return RuleSet(1, rules).decide(action, channel=channel, user=user, roles=roles).allowed


@pytest.mark.parametrize(
    ("permission", "user", "roles", "allowed"),
    [
        (Permission(Access.NOBODY), "42", ("admin",), False),
        (Permission(Access.ANYONE), "", (), True),
        (Permission(Access.AUTHENTICATED), "", (), False),
        (Permission(Access.AUTHENTICATED), "42", (), True),
        (Permission(Access.USERS, users=frozenset({"42"})), "42", (), True),
        (Permission(Access.USERS, users=frozenset({"42"})), "43", (), False),
        (Permission(Access.USERS, users=frozenset({""})), "", (), False),  # anonymous is never "listed"
        (Permission(Access.ROLES, roles=frozenset({"admin"})), "7", ("admin", "x"), True),
        (Permission(Access.ROLES, roles=frozenset({"admin"})), "7", ("x",), False),
        (Permission(Access.ROLES, roles=frozenset({"admin"})), "", ("admin",), False),
    ],
)
@pytest.mark.parametrize("action", [Action.SUBSCRIBE, Action.PUBLISH])
def test_each_access_mode(
    permission: Permission, user: str, roles: tuple[str, ...], allowed: bool, action: Action
) -> None:
    rules = [rule(1, "room:*", sub=permission, pub=permission)]
    assert decide(rules, "room:1", user, roles, action) is allowed


def test_the_owner_may_use_only_their_own_channel() -> None:
    rules = [rule(1, "inbox:{user}", sub=Permission(Access.OWNER), pub=Permission(Access.OWNER))]
    assert decide(rules, "inbox:42", "42") is True
    assert decide(rules, "inbox:43", "42") is False
    assert decide(rules, "inbox:42", "") is False
    assert decide(rules, "inbox:42", "42", action=Action.PUBLISH) is True


def test_no_match_denies_and_says_so() -> None:
    decision = RuleSet(1, [rule(1, "chat:*", sub=Permission(Access.ANYONE))]).decide(
        Action.SUBSCRIBE, channel="x:1", user="42"
    )
    assert (decision.allowed, decision.reason, decision.rule) == (False, "no rule matches channel 'x:1'", None)


def test_the_first_rule_by_priority_decides_even_when_a_later_one_would_allow() -> None:
    rules = [
        rule(1, "chat:*", sub=Permission(Access.ANYONE), priority=100),
        rule(2, "chat:private:*", sub=Permission(Access.NOBODY), priority=10),
    ]
    decision = RuleSet(1, rules).decide(Action.SUBSCRIBE, channel="chat:private:1", user="42")
    assert decision.allowed is False
    assert decision.reason == "rule #2 'chat:private:*' denies subscribe: nobody may"
    assert decide(rules, "chat:public", "42") is True


def test_reasons_name_the_rule_and_what_was_missing() -> None:
    rs = RuleSet(1, [rule(3, "ops:*", sub=Permission(Access.ROLES, roles=frozenset({"oncall", "admin"})))])
    assert rs.decide(Action.SUBSCRIBE, channel="ops:1", user="7").reason == (
        "rule #3 'ops:*' denies subscribe: requires one of the roles admin, oncall"
    )
    assert rs.decide(Action.SUBSCRIBE, channel="ops:1", user="7", roles=["admin"]).reason == (
        "rule #3 'ops:*' lets roles admin, oncall subscribe"
    )


def test_partition_targets() -> None:
    rs = RuleSet(
        1,
        [],
        [
            PartitionRule(1, Pattern.parse("chat:*"), 100, "chat", 16, PartitionKey.CHANNEL, 1000),
            PartitionRule(2, Pattern.parse("dm:*"), 100, "dm", 4, PartitionKey.USER, None),
            PartitionRule(3, Pattern.parse("audit:*"), 100, "audit", 4, PartitionKey.NONE, None),
            PartitionRule(4, Pattern.parse("tmp:*"), 100, "tmp", 1, PartitionKey.CHANNEL, None, store=False),
        ],
        Defaults(stream="default", partitions=8, max_length=5),
    )
    chat = rs.target(channel="chat:room1", user="42")
    assert (chat.stream, chat.partition, chat.max_length, chat.rule_id) == (
        "chat",
        stable_partition("chat:room1", 16),
        1000,
        1,
    )
    assert rs.target(channel="dm:a", user="42").partition == stable_partition("42", 4)
    assert rs.target(channel="audit:x", user="42").partition == 0
    assert rs.target(channel="tmp:x", user="42").store is False
    fallback = rs.target(channel="other:1", user="42")
    assert (fallback.stream, fallback.partition, fallback.max_length, fallback.rule_id) == (
        "default",
        stable_partition("other:1", 8),
        5,
        None,
    )


def test_stable_partition_is_crc32_and_does_not_depend_on_the_process() -> None:
    import subprocess
    import sys

    here = [stable_partition(f"chat:{i}", 8) for i in range(50)]
    code = "from partitions.rules import stable_partition as s; print([s(f'chat:{i}', 8) for i in range(50)])"
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert other.stdout.strip() == str(here)
    assert len(set(here)) == 8  # spreads over all partitions


def test_split_ids_accepts_commas_and_spaces() -> None:
    assert split_ids(" 42, 43  alice,,") == frozenset({"42", "43", "alice"})
