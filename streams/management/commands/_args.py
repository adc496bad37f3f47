"""Argument types shared by the stream commands: bad input becomes an argparse error naming the argument."""

from __future__ import annotations

import argparse
import re

ENTRY_ID = re.compile(r"\d+(-\d+)?")


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def entry_id(value: str) -> str:
    if not ENTRY_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"expected a stream entry id like 1700000000000-0, got {value!r}")
    return value
