"""Argument types shared by the token commands: each turns bad input into a CommandError-friendly
argparse error that names the argument."""

from __future__ import annotations

import argparse
import json
from typing import Any

MAX_TTL = 10 * 365 * 24 * 3600
MAX_ID = 255  # control.IssuedToken.user and .channel


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
    except RecursionError:
        raise argparse.ArgumentTypeError("not valid JSON (nested deeper than the parser goes)") from None


def json_object(value: str) -> dict[str, Any]:
    parsed = json_value(value)
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, e.g. \'{"roles": ["admin"]}\'')
    return parsed


def non_empty(value: str) -> str:
    """A user id or a channel: what control.IssuedToken records them in (255 characters, no NUL)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("cannot be empty")
    if len(value) > MAX_ID:
        raise argparse.ArgumentTypeError(f"at most {MAX_ID} characters, got {len(value)}")
    if "\x00" in value:
        raise argparse.ArgumentTypeError("cannot contain NUL characters")
    return value
