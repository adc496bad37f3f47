"""Argument types shared by the token commands: each turns bad input into a CommandError-friendly
argparse error that names the argument."""

from __future__ import annotations

import argparse
import json
from typing import Any

MAX_TTL = 10 * 365 * 24 * 3600


def ttl(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole seconds, got {value!r}") from None
    if not 1 <= seconds <= MAX_TTL:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TTL} seconds, got {seconds}")
    return seconds


def json_value(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None


def json_object(value: str) -> dict[str, Any]:
    parsed = json_value(value)
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, e.g. \'{"roles": ["admin"]}\'')
    return parsed


def non_empty(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("cannot be empty")
    return value
