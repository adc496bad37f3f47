"""Rule-decision throughput with 10, 1,000 and 10,000 channel rules (pure Python, no Django, no DB).

The rules are a realistic mix — exact names, prefix wildcards `ns{i}:*`, owner patterns
`inbox{i}:{user}`, mid-pattern wildcards `orders:{i}:*:eu`, plus the two rules the gateway ships
(`public:*`, `chat:*`) — and the same query mix runs against every size: hits on rules anywhere in
the set (index drawn uniformly) and misses, some of which share a prefix with a rule.

Goal from the issue: the 10,000-rule case decides at least half as fast as the 10-rule case.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from partitions.patterns import Pattern
from partitions.rules import Access, Action, ChannelRule, Permission, RuleSet

SIZES = (10, 1_000, 10_000)
TARGET_RATIO = 0.5
KINDS = ("exact", "prefix", "owner", "mid")
USER = "42"
ROLES = ("member",)

AUTHENTICATED = Permission(Access.AUTHENTICATED)
OWNER = Permission(Access.OWNER)
STAFF = Permission(Access.ROLES, roles=frozenset({"staff", "member"}))
LISTED = Permission(Access.USERS, users=frozenset({"42", "7"}))


def rule_text(kind: str, i: int) -> str:
    return {
        "exact": f"support:ticket{i}",
        "prefix": f"ns{i}:*",
        "owner": f"inbox{i}:{{user}}",
        "mid": f"orders:{i}:*:eu",
    }[kind]


def generate_rules(size: int) -> list[ChannelRule]:
    """The shipped defaults plus size - 2 generated rules, the four kinds in turn."""
    rules = [
        ChannelRule(1, Pattern.parse("public:*"), 100, Permission(Access.ANYONE), AUTHENTICATED),
        ChannelRule(2, Pattern.parse("chat:*"), 100, AUTHENTICATED, AUTHENTICATED),
    ]
    permission = {"exact": AUTHENTICATED, "prefix": STAFF, "owner": OWNER, "mid": LISTED}
    for i in range(size - len(rules)):
        kind = KINDS[i % len(KINDS)]
        rules.append(
            ChannelRule(
                id=len(rules) + 1,
                pattern=Pattern.parse(rule_text(kind, i)),
                priority=100 if i % 10 else 50,  # some rules outrank the rest
                subscribe=permission[kind],
                publish=permission[kind],
            )
        )
    return rules


@dataclass(frozen=True)
class Query:
    channel: str
    expected: str | None  # the pattern that must decide, None: no rule matches


def generate_queries(size: int, count: int = 2_000, seed: int = 7) -> list[Query]:
    """`count` channels: 3 in 4 hit a rule (drawn uniformly from the whole set), 1 in 4 misses."""
    rng = random.Random(seed)
    indices = {kind: [i for i in range(size - 2) if KINDS[i % len(KINDS)] == kind] for kind in KINDS}

    def hit(n: int) -> Query:
        shape = n % 6
        if shape == 4:
            return Query(f"chat:room{rng.randrange(1000)}", "chat:*")
        if shape == 5:
            return Query("public:news", "public:*")
        kind = KINDS[shape]
        i = rng.choice(indices[kind])
        if kind == "exact":
            channel = f"support:ticket{i}"
        elif kind == "prefix":
            channel = f"ns{i}:room{rng.randrange(100)}"
        elif kind == "owner":
            channel = f"inbox{i}:{rng.choice(('42', '7'))}"  # the owner, and someone else
        else:
            channel = f"orders:{i}:{rng.randrange(10_000)}:eu"
        return Query(channel, rule_text(kind, i))

    def miss(n: int) -> Query:
        shape = n % 4
        if shape == 0:
            return Query(f"unknown{rng.randrange(10_000)}:x", None)
        if shape == 1:
            return Query(f"inbox{rng.choice(indices['owner'])}:a:b", None)  # {user} never spans a ':'
        if shape == 2:
            return Query(f"orders:{rng.choice(indices['mid'])}:1:us", None)  # right prefix, wrong suffix
        return Query(f"support:ticket{size + rng.randrange(1000)}", None)

    misses = count // 4
    queries = [hit(n) for n in range(count - misses)] + [miss(n) for n in range(misses)]
    rng.shuffle(queries)
    return queries


def check(ruleset: RuleSet, queries: Sequence[Query]) -> None:
    """The benchmark must measure real matches: every query is decided by the rule it aims at."""
    for q in queries:
        decision = ruleset.decide(Action.PUBLISH, channel=q.channel, user=USER, roles=ROLES)
        got = decision.rule.pattern.text if decision.rule else None
        if got != q.expected:
            raise AssertionError(f"{q.channel!r}: decided by {got!r}, expected {q.expected!r}")


def time_decisions(ruleset: RuleSet, queries: Sequence[Query], *, min_time: float) -> float:
    """Decisions per second over one sample: loops over the queries for at least min_time."""
    channels = [q.channel for q in queries]
    decide, publish = ruleset.decide, Action.PUBLISH
    loops, started = 0, time.perf_counter()
    while True:
        for channel in channels:
            decide(publish, channel=channel, user=USER, roles=ROLES)
        loops += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_time:
            return loops * len(channels) / elapsed


def run(*, samples: int = 15, min_time: float = 0.15) -> dict[str, Any]:
    """Samples of the sizes interleave (10, 1k, 10k, 10, 1k, ...), so a busy moment on the box hits
    every size alike; the ratio is the median of the per-round ratios."""
    cases = []
    sizes: dict[str, dict[str, Any]] = {}
    for size in SIZES:
        started = time.perf_counter()
        ruleset = RuleSet(version=1, channel_rules=generate_rules(size))
        build_ms = (time.perf_counter() - started) * 1000
        queries = generate_queries(size)
        check(ruleset, queries)
        cases.append((size, ruleset, queries))
        sizes[str(size)] = {"rules": size, "queries": len(queries), "build_ms": round(build_ms, 1)}
    rates: dict[int, list[float]] = {size: [] for size in SIZES}
    gc.disable()  # as timeit does: a collection landing in one sample is noise, not the rule set's cost
    try:
        for _ in range(samples):
            for size, ruleset, queries in cases:
                rates[size].append(time_decisions(ruleset, queries, min_time=min_time))
    finally:
        gc.enable()
    for size in SIZES:
        median = statistics.median(rates[size])
        paired = statistics.median(r / base for base, r in zip(rates[SIZES[0]], rates[size], strict=True))
        sizes[str(size)].update(
            best_per_s=round(max(rates[size])),
            median_per_s=round(median),
            median_us_per_decision=round(1e6 / median, 3),
            ratio_to_smallest=round(paired, 3),
        )
    ratio = sizes[str(SIZES[-1])]["ratio_to_smallest"]
    return {
        "sizes": sizes,
        "samples": samples,
        "min_time_s": min_time,
        "ratio_largest_to_smallest": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
    }


def table(results: dict[str, Any]) -> str:
    head = f"{'rules':>7} {'build ms':>9} {'best/s':>11} {'median/s':>11} {'us/decision':>12} {'vs 10 rules':>12}"
    lines = [head, "-" * len(head)]
    for row in results["sizes"].values():
        lines.append(
            f"{row['rules']:>7,} {row['build_ms']:>9.1f} {row['best_per_s']:>11,} {row['median_per_s']:>11,} "
            f"{row['median_us_per_decision']:>12.3f} {row['ratio_to_smallest']:>11.2f}x"
        )
    ratio, target = results["ratio_largest_to_smallest"], results["target_ratio"]
    verdict = "PASS" if results["meets_target"] else "FAIL"
    lines.append(
        f"{verdict}: 10,000 rules decide at {ratio:.2f}x the 10-rule rate (goal >= {target:.2f}x; median of "
        f"{results['samples']} interleaved rounds)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run()))
