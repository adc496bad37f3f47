from __future__ import annotations

import pytest

from partitions.patterns import Entry, Pattern, PatternError, PatternIndex


@pytest.mark.parametrize(
    ("pattern", "channel", "expected"),
    [
        ("news:global", "news:global", (True, None)),
        ("news:global", "news:global2", (False, None)),
        ("chat:*", "chat:room1", (True, None)),
        ("chat:*", "chat:", (True, None)),
        ("chat:*", "chat:a:b", (True, None)),
        ("chat:*", "chatroom", (False, None)),
        ("orders:*:eu", "orders:1:eu", (True, None)),
        ("orders:*:eu", "orders:1:us", (False, None)),
        ("inbox:{user}", "inbox:42", (True, "42")),
        ("inbox:{user}", "inbox:", (False, None)),
        ("inbox:{user}", "inbox:42:x", (False, None)),
        ("dm:{user}:*", "dm:7:from:9", (True, "7")),
        ("*", "anything at all", (True, None)),
        ("a.b+c", "a.b+c", (True, None)),
        ("a.b+c*", "aXb+c", (False, None)),  # regex metacharacters are literal
    ],
)
def test_pattern_matching(pattern: str, channel: str, expected: tuple[bool, str | None]) -> None:
    assert Pattern.parse(pattern).match(channel) == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "a pattern cannot be empty"),
        ("chat room", "a pattern cannot contain spaces or control characters"),
        ("chat:\x00", "a pattern cannot contain spaces or control characters"),
        ("{user}:{user}", "a pattern can hold {user} at most once"),
        ("inbox:{id}", "braces are only allowed as the {user} placeholder"),
        ("chat:**", "'**' is redundant: one '*' already matches any run of characters"),
        ("x" * 256, "a pattern is at most 255 characters"),
    ],
)
def test_bad_patterns_are_refused_with_a_reason(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message.replace("*", r"\*").replace("{", r"\{").replace("}", r"\}")):
        Pattern.parse(pattern)


def index(*rules: tuple[str, int, int]) -> PatternIndex[str]:
    entries = []
    for text, priority, rule_id in rules:
        pattern = Pattern.parse(text)
        entries.append(Entry(pattern, (priority, -len(pattern.prefix), rule_id), text))
    return PatternIndex(entries)


def test_the_lowest_priority_wins_whatever_the_bucket() -> None:
    idx = index(("chat:vip:*", 50, 1), ("chat:*", 10, 2), ("chat:vip:lounge", 90, 3))
    found = idx.first("chat:vip:lounge")
    assert found is not None
    assert found[0].value == "chat:*"


def test_on_equal_priority_the_longer_literal_prefix_wins_then_the_older_rule() -> None:
    idx = index(("chat:*", 100, 1), ("chat:vip:*", 100, 2), ("chat:v*", 100, 3))
    assert idx.first("chat:vip:1")[0].value == "chat:vip:*"  # type: ignore[index]
    idx = index(("a:*", 100, 9), ("a:*x", 100, 4))
    assert idx.first("a:x")[0].value == "a:*x"  # type: ignore[index]


def test_an_exact_name_competes_by_priority_too() -> None:
    idx = index(("chat:*", 10, 1), ("chat:lobby", 20, 2))
    assert idx.first("chat:lobby")[0].value == "chat:*"  # type: ignore[index]
    idx = index(("chat:*", 30, 1), ("chat:lobby", 20, 2))
    assert idx.first("chat:lobby")[0].value == "chat:lobby"  # type: ignore[index]


def test_no_match_is_none() -> None:
    assert index(("chat:*", 1, 1)).first("news:1") is None


def test_a_non_matching_earlier_pattern_in_a_bucket_does_not_hide_a_later_one() -> None:
    idx = index(("orders:*:eu", 1, 1), ("orders:*", 2, 2))
    assert idx.first("orders:1:us")[0].value == "orders:*"  # type: ignore[index]
