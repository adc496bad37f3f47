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

    @property
    def keys(self) -> list[str]:
        return [stream_key(self.name, p) for p in range(self.partitions)]


def stream_specs_of(ruleset: RuleSet) -> list[StreamSpec]:
    """Every stream `ruleset` writes (rules that do not store write nothing), sorted by name."""
    counts: dict[str, int] = {ruleset.defaults.stream: max(1, ruleset.defaults.partitions)}
    for rule in ruleset.partition_rules:
        if rule.store:
            counts[rule.stream] = max(counts.get(rule.stream, 1), rule.partitions)
    return [StreamSpec(name, counts[name]) for name in sorted(counts)]


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
