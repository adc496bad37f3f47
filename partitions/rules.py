"""The compiled rule set and the decisions it makes. Pure: no Django, no I/O.

A callback asks one question per request — may this user do this on this channel, and where does
the message go — and gets an answer with a human-readable reason that the admin tester and the
denial log share.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from control.access import EMPTY_ACCESS, AccessSnapshot, Closure, closure_for
from partitions.patterns import Entry, Pattern, PatternIndex


class Access(StrEnum):
    NOBODY = "nobody"
    ANYONE = "anyone"
    AUTHENTICATED = "authenticated"
    USERS = "users"
    ROLES = "roles"
    OWNER = "owner"


class Action(StrEnum):
    SUBSCRIBE = "subscribe"
    PUBLISH = "publish"


class PartitionKey(StrEnum):
    CHANNEL = "channel"
    USER = "user"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Permission:
    access: Access
    users: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    def check(self, *, user: str, roles: Sequence[str], owner: str | None) -> str | None:
        """None when allowed, otherwise what the client lacked."""
        access = self.access
        if access is Access.ANYONE:
            return None
        if access is Access.NOBODY:
            return "nobody may"
        if not user:
            return "requires an authenticated user"
        if access is Access.AUTHENTICATED:
            return None
        if access is Access.USERS:
            return None if user in self.users else f"user {user!r} is not listed"
        if access is Access.ROLES:
            return (
                None
                if not self.roles.isdisjoint(roles)
                else "requires one of the roles " + ", ".join(sorted(self.roles))
            )
        if owner is not None and owner == user:
            return None
        return f"only the owner ({owner!r}) may"

    def describe(self) -> str:
        if self.access is Access.USERS:
            return "users " + ", ".join(sorted(self.users))
        if self.access is Access.ROLES:
            return "roles " + ", ".join(sorted(self.roles))
        return {
            Access.NOBODY: "nobody",
            Access.ANYONE: "anyone",
            Access.AUTHENTICATED: "authenticated users",
            Access.OWNER: "the channel's owner",
        }[self.access]


@dataclass(frozen=True, slots=True)
class RateLimit:
    count: int
    window: int  # seconds


@dataclass(frozen=True, slots=True)
class ChannelRule:
    id: int
    pattern: Pattern
    priority: int
    subscribe: Permission
    publish: Permission
    max_payload_bytes: int | None = None
    # Returns None when the data is acceptable, else what is wrong with it.
    schema_check: Callable[[bytes], str | None] | None = None
    # Publications that are not JSON text are accepted (stored enc=binary) only where this is set.
    allow_binary: bool = False
    rate_limit: RateLimit | None = None
    # Centrifugo subscribe-result overrides, e.g. {"presence": True}; only the options set.
    overrides: Mapping[str, bool] = field(default_factory=dict)
    # The rule's other settings marked `compiled` in partitions.models.CHANNEL_RULE_FIELDS, by name.
    options: Mapping[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return f"rule #{self.id} {self.pattern.text!r}"


@dataclass(frozen=True, slots=True)
class PartitionRule:
    id: int
    pattern: Pattern
    priority: int
    stream: str
    partitions: int
    key: PartitionKey
    max_length: int | None
    store: bool = True
    max_age_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    rule: ChannelRule | None = None


@dataclass(frozen=True, slots=True)
class Closed(Decision):
    """A refusal by an operator's kill switch (control.access). `rule` is the rule that would have
    decided, for what is not a permission (presence settings), never to allow. A subclass, not a
    field of Decision: every decision would pay for one more frozen field (~80 ns)."""

    closure: Closure = field(kw_only=True)


def closure_of(decision: Decision) -> Closure | None:
    """The closure that refused, if an operator's kill switch did (ask only of a refusal)."""
    return decision.closure if isinstance(decision, Closed) else None


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """Where one publication is stored: a stream name and one of its partitions."""

    stream: str
    partition: int
    max_length: int | None
    store: bool
    rule_id: int | None  # None: the built-in default
    max_age_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Defaults:
    stream: str = "default"
    partitions: int = 8
    max_length: int | None = 100_000


def stable_partition(key: str, partitions: int) -> int:
    """CRC-32 is stable across processes and releases, unlike Python's salted hash()."""
    if partitions <= 1:
        return 0
    return zlib.crc32(key.encode("utf-8")) % partitions


def _order(rule_id: int, priority: int, pattern: Pattern) -> tuple[int, int, int]:
    return (priority, -len(pattern.prefix), rule_id)


@dataclass
class RuleSet:
    version: int
    channel_rules: Sequence[ChannelRule]
    partition_rules: Sequence[PartitionRule] = ()
    defaults: Defaults = field(default_factory=Defaults)
    # Operator controls (control.access), loaded and swapped in with the rules.
    access: AccessSnapshot = EMPTY_ACCESS
    closures: Sequence[Closure] = ()

    def __post_init__(self) -> None:
        self._channels: PatternIndex[ChannelRule] = PatternIndex(
            Entry(r.pattern, _order(r.id, r.priority, r.pattern), r) for r in self.channel_rules
        )
        self._partitions: PatternIndex[PartitionRule] = PatternIndex(
            Entry(r.pattern, _order(r.id, r.priority, r.pattern), r) for r in self.partition_rules
        )

    def decide(self, action: Action, *, channel: str, user: str, roles: Sequence[str] = ()) -> Decision:
        if self.closures:
            closure = closure_for(self.closures, channel, subscribe=action is Action.SUBSCRIBE)
            if closure is not None:
                # Refused whatever the rule says; the rule is still named (presence, the admin).
                found = self._channels.first(channel)
                reason = f"channel closed by an operator ({closure.pattern.text}): {closure.reason}"
                return Closed(False, reason, found[0].value if found else None, closure=closure)
        found = self._channels.first(channel)
        if found is None:
            return Decision(False, f"no rule matches channel {channel!r}")
        entry, owner = found
        rule = entry.value
        permission = rule.subscribe if action is Action.SUBSCRIBE else rule.publish
        lacking = permission.check(user=user, roles=roles, owner=owner)
        if lacking is None:
            return Decision(True, f"{rule.label()} lets {permission.describe()} {action.value}", rule)
        return Decision(False, f"{rule.label()} denies {action.value}: {lacking}", rule)

    def target(self, *, channel: str, user: str) -> StreamTarget:
        found = self._partitions.first(channel)
        if found is None:
            d = self.defaults
            return StreamTarget(d.stream, stable_partition(channel, d.partitions), d.max_length, True, None)
        rule = found[0].value
        if rule.key is PartitionKey.CHANNEL:
            partition = stable_partition(channel, rule.partitions)
        elif rule.key is PartitionKey.USER:
            partition = stable_partition(user, rule.partitions)
        else:
            partition = 0
        return StreamTarget(rule.stream, partition, rule.max_length, rule.store, rule.id, rule.max_age_seconds)


def shadowed_rules(rules: Sequence[ChannelRule]) -> dict[int, ChannelRule]:
    """Rules that can never decide, each with the earlier rule that matches every channel it does.

    Conservative: only a plain prefix rule (`chat:*`, or `*`) is taken to cover another, when the
    other's literal prefix starts with its prefix. It never warns wrongly; it may miss exotic cases."""
    by_prefix: dict[str, list[ChannelRule]] = {}
    for rule in rules:
        p = rule.pattern
        if not p.exact and p.regex is None:
            by_prefix.setdefault(p.prefix, []).append(rule)
    lengths = sorted({len(prefix) for prefix in by_prefix})
    found: dict[int, ChannelRule] = {}
    for rule in rules:
        order = _order(rule.id, rule.priority, rule.pattern)
        literal = rule.pattern.prefix
        for length in lengths:
            if length > len(literal):
                break
            for cover in by_prefix.get(literal[:length], ()):
                if cover.id != rule.id and _order(cover.id, cover.priority, cover.pattern) < order:
                    best = found.get(rule.id)
                    if best is None or _order(cover.id, cover.priority, cover.pattern) < _order(
                        best.id, best.priority, best.pattern
                    ):
                        found[rule.id] = cover
    return found


def split_ids(text: str) -> frozenset[str]:
    """'42, 43 alice' -> {'42', '43', 'alice'}: operators type lists separated by commas or spaces."""
    return frozenset(part for part in text.replace(",", " ").split() if part)


def build(
    version: int,
    channel_rules: Iterable[ChannelRule],
    partition_rules: Iterable[PartitionRule],
    defaults: Defaults,
    *,
    access: AccessSnapshot = EMPTY_ACCESS,
    closures: Iterable[Closure] = (),
) -> RuleSet:
    return RuleSet(
        version=version,
        channel_rules=tuple(channel_rules),
        partition_rules=tuple(partition_rules),
        defaults=defaults,
        access=access,
        closures=tuple(closures),
    )
