"""The snapshot the callbacks consult, and the kill switch inside RuleSet.decide."""

from __future__ import annotations

from control.access import DISCONNECT_BANNED, DISCONNECT_TOKEN_REVOKED, AccessSnapshot, BanInfo, Closure
from partitions.patterns import Pattern
from partitions.rules import Access, Action, ChannelRule, Defaults, Permission, build


def test_issue13_empty_snapshot_refuses_nobody() -> None:
    snapshot = AccessSnapshot()
    assert not snapshot
    assert snapshot.refusal(user="alice", jti="j1", iat=1, now=10) is None


def test_issue13_ban_revoked_jti_and_cutoff() -> None:
    snapshot = AccessSnapshot(
        revoked_jtis=frozenset({"j1"}),
        user_cutoffs={"bob": 100},
        bans={"eve": BanInfo(until=None, reason="spam"), "tmp": BanInfo(until=50, reason="")},
    )
    assert snapshot.refusal(user="eve", jti=None, iat=None, now=10).code == DISCONNECT_BANNED  # type: ignore[union-attr]
    assert snapshot.refusal(user="tmp", jti=None, iat=None, now=10).code == DISCONNECT_BANNED  # type: ignore[union-attr]
    assert snapshot.refusal(user="tmp", jti=None, iat=None, now=60) is None  # the ban is over
    assert snapshot.refusal(user="alice", jti="j1", iat=1, now=10).code == DISCONNECT_TOKEN_REVOKED  # type: ignore[union-attr]
    assert snapshot.refusal(user="alice", jti="j2", iat=1, now=10) is None
    assert snapshot.refusal(user="bob", jti="j3", iat=99, now=200).code == DISCONNECT_TOKEN_REVOKED  # type: ignore[union-attr]
    assert snapshot.refusal(user="bob", jti="j4", iat=100, now=200) is None  # issued at the cutoff
    assert snapshot.refusal(user="bob", jti=None, iat=None, now=200) is None  # a session is no token


def test_issue13_closure_overrides_rules_per_action() -> None:
    rule = ChannelRule(
        id=1,
        pattern=Pattern.parse("chat:*"),
        priority=0,
        subscribe=Permission(Access.ANYONE),
        publish=Permission(Access.ANYONE),
    )
    closure = Closure(id=1, pattern=Pattern.parse("chat:*"), publish=True, subscribe=False, reason="incident 7")
    ruleset = build(1, [rule], [], Defaults(), closures=[closure])
    denied = ruleset.decide(Action.PUBLISH, channel="chat:room", user="u")
    assert not denied.allowed
    assert "incident 7" in denied.reason
    assert ruleset.decide(Action.SUBSCRIBE, channel="chat:room", user="u").allowed
    assert ruleset.decide(Action.PUBLISH, channel="news", user="u").reason.startswith("no rule")
