"""What a publication's bytes are: JSON text, or binary.

One rule for the publish path (which decides whether a channel may take it and marks binary entries
`enc=binary`) and for every reader (which must never hand bytes that are not JSON to something that
embeds them as JSON: a legacy entry may hold invalid UTF-8 without the mark).
"""

from __future__ import annotations

import msgspec

_skip_json = msgspec.json.Decoder(msgspec.Raw).decode  # parses and checks the structure, builds nothing


def is_json_text(data: bytes) -> bool:
    """One JSON value (surrounding whitespace allowed) in valid UTF-8. msgspec checks the structure
    without building anything but does not check UTF-8 inside strings: `isascii` settles most
    publications at once, a strict decode the rest (its cost: bench/RESULTS.md)."""
    try:
        _skip_json(data)
    except (msgspec.DecodeError, RecursionError):  # deep nesting: msgspec counts it against Python's limit
        return False
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
