"""Channel patterns and an index that finds the first matching one without scanning every rule.

Syntax, over full channel names:
- literal characters match themselves (`chat:lobby` is an exact name);
- `*` matches any run of characters, including none and including `:` (`orders:eu:*`);
- `{user}` matches one non-empty segment without `:` and captures it as the channel's owner
  (`inbox:{user}` matches `inbox:42` with owner "42").

The index groups patterns by their literal prefix (everything before the first `*` or `{user}`).
A channel only has to be checked against patterns whose prefix it starts with, so the cost of a
lookup grows with the number of distinct prefix lengths, not with the number of rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

OWNER_PLACEHOLDER = "{user}"
MAX_PATTERN_LENGTH = 255
_TOKEN = re.compile(r"\*|\{user\}")


class PatternError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str
    prefix: str
    regex: re.Pattern[str] | None  # None: an exact name, or prefix + a single trailing "*"
    exact: bool
    has_owner: bool

    @classmethod
    def parse(cls, text: str) -> Pattern:
        if not text:
            raise PatternError("a pattern cannot be empty")
        if len(text) > MAX_PATTERN_LENGTH:
            raise PatternError(f"a pattern is at most {MAX_PATTERN_LENGTH} characters")
        if any(ch.isspace() or not ch.isprintable() for ch in text):
            raise PatternError("a pattern cannot contain spaces or control characters")
        if text.count(OWNER_PLACEHOLDER) > 1:
            raise PatternError("a pattern can hold {user} at most once")
        stripped = _TOKEN.sub("", text)
        if "{" in stripped or "}" in stripped:
            raise PatternError("braces are only allowed as the {user} placeholder")
        if "**" in text:
            raise PatternError("'**' is redundant: one '*' already matches any run of characters")
        first = _TOKEN.search(text)
        if first is None:
            return cls(text=text, prefix=text, regex=None, exact=True, has_owner=False)
        prefix = text[: first.start()]
        if text.endswith("*") and text.count("*") == 1 and OWNER_PLACEHOLDER not in text:
            return cls(text=text, prefix=prefix, regex=None, exact=False, has_owner=False)
        parts: list[str] = []
        pos = 0
        for token in _TOKEN.finditer(text):
            parts.append(re.escape(text[pos : token.start()]))
            parts.append(".*" if token.group() == "*" else "(?P<owner>[^:]+)")
            pos = token.end()
        parts.append(re.escape(text[pos:]))
        regex = re.compile("".join(parts) + r"\Z", re.DOTALL)
        return cls(text=text, prefix=prefix, regex=regex, exact=False, has_owner=OWNER_PLACEHOLDER in text)

    def match(self, channel: str) -> tuple[bool, str | None]:
        """(matches, owner) — owner is the `{user}` segment when the pattern has one."""
        if self.exact:
            return channel == self.text, None
        if self.regex is None:
            return channel.startswith(self.prefix), None
        found = self.regex.match(channel)
        if found is None:
            return False, None
        return True, (found.group("owner") if self.has_owner else None)


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    pattern: Pattern
    order: tuple[int, int, int]  # (priority, -len(prefix), id): lower goes first
    value: T


class PatternIndex(Generic[T]):
    """First-match lookup over many patterns, ordered by `Entry.order`."""

    def __init__(self, entries: Iterable[Entry[T]]) -> None:
        exact: dict[str, list[Entry[T]]] = {}
        by_prefix: dict[str, list[Entry[T]]] = {}
        for entry in entries:
            table = exact if entry.pattern.exact else by_prefix
            table.setdefault(entry.pattern.prefix, []).append(entry)
        for bucket in (*exact.values(), *by_prefix.values()):
            bucket.sort(key=lambda e: e.order)
        self._exact = exact
        self._by_prefix = by_prefix
        self._lengths = sorted({len(prefix) for prefix in by_prefix})
        self.size = sum(len(b) for b in exact.values()) + sum(len(b) for b in by_prefix.values())

    def first(self, channel: str) -> tuple[Entry[T], str | None] | None:
        best: tuple[Entry[T], str | None] | None = None
        bucket = self._exact.get(channel)
        if bucket:
            best = (bucket[0], None)
        size = len(channel)
        for length in self._lengths:
            if length > size:
                break
            bucket = self._by_prefix.get(channel[:length])
            if not bucket:
                continue
            for entry in bucket:
                if best is not None and entry.order >= best[0].order:
                    break  # the bucket is sorted: nothing later in it can win
                matched, owner = entry.pattern.match(channel)
                if matched:
                    best = (entry, owner)
                    break
        return best
