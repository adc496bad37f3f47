"""Which streams the gateway writes, and their partition keys.

The rules are the only record of the streams: a stream is the `stream` of an enabled partition rule
that stores, or the default stream. Several rules may share one stream name with different
partition counts; the largest count is taken, so no partition a rule writes is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from partitions.rules import RuleSet
from streams.writer import stream_key


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    partitions: int
    # How the rules trim it (None: not at all). Several rules on one stream: the loosest of them, so
    # an entry written for no particular rule (a leave: streams.joinleave) trims no more than any does.
    max_length: int | None = None
    max_age_seconds: int | None = None

    @property
    def keys(self) -> list[str]:
        return [stream_key(self.name, p) for p in range(self.partitions)]


def stream_specs_of(ruleset: RuleSet) -> list[StreamSpec]:
    """Every stream `ruleset` writes (rules that do not store write nothing), sorted by name."""
    defaults = ruleset.defaults
    counts: dict[str, int] = {defaults.stream: max(1, defaults.partitions)}
    lengths: dict[str, int | None] = {defaults.stream: defaults.max_length}
    ages: dict[str, int | None] = {defaults.stream: None}
    for rule in ruleset.partition_rules:
        if rule.store:
            counts[rule.stream] = max(counts.get(rule.stream, 1), rule.partitions)
            lengths[rule.stream] = _loosest(lengths, rule.stream, rule.max_length)
            ages[rule.stream] = _loosest(ages, rule.stream, rule.max_age_seconds)
    return [StreamSpec(name, counts[name], lengths[name], ages[name]) for name in sorted(counts)]


def _loosest(limits: dict[str, int | None], stream: str, limit: int | None) -> int | None:
    if stream not in limits:
        return limit
    known = limits[stream]
    return None if known is None or limit is None else max(known, limit)


class UnknownStream(ValueError):
    pass


def stream_specs(names: Sequence[str] | None = None, *, partitions: int | None = None) -> list[StreamSpec]:
    """The streams the current rules write, or only `names`. With `partitions` the rules are not
    read: `names` are taken to have that many (a consumer without database access, or partitions a
    rule no longer has)."""
    if partitions is not None:
        return [StreamSpec(name, partitions) for name in names or ()]
    from partitions.store import rules_store

    specs = stream_specs_of(rules_store.current())
    if not names:
        return specs
    if missing := set(names) - {s.name for s in specs}:
        raise UnknownStream(f"no enabled, storing partition rule writes stream(s) {', '.join(sorted(missing))}")
    return [s for s in specs if s.name in names]
