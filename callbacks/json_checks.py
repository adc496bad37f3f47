"""The one check every JSON request body passes before it is decoded: valid UTF-8, and nested no
deeper than MAX_JSON_DEPTH. Used by every entry point (the proxy calls, on the event loop and
through DRF, and `POST /api/publish`).

Why here and not left to msgspec: msgspec counts nesting against Python's recursion limit, so a
2 KB body of ~980 `[` raised RecursionError (a 500 with a traceback) under gunicorn's asyncio
worker; invalid UTF-8 inside a `str` field raised UnicodeDecodeError, not msgspec.DecodeError; and
a `msgspec.Raw` field (a publication's `data`) is not checked for UTF-8 at all, so bytes that
break every JSON subscriber could be stored. DECODE_ERRORS is the last line of defence at each
decode site, for whatever this check does not foresee.

Cost on the hot path (a publish body of a few hundred bytes): `isascii()` and two `count()`s,
all C loops over the bytes, well under a microsecond. Only a body with more than MAX_JSON_DEPTH
`{`/`[` bytes (or non-ASCII bytes) pays for the exact scan.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate

import msgspec

# The whole request body: Centrifugo's envelope is one level, so a publication's `data` (or
# connect/rpc `data`, or the server API's `data`) may nest 63 levels.
MAX_JSON_DEPTH = 64

# What a decode may raise on hostile bytes: msgspec's errors and UnicodeDecodeError are all
# ValueErrors; RecursionError is not.
DECODE_ERRORS = (msgspec.DecodeError, ValueError, RecursionError)

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a JSON string, escapes included
# The brackets that remain once strings are gone, as signed bytes: +1 opens a level, -1 closes one.
_LEVELS = bytes.maketrans(b"{[}]", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"{[}]")))


def json_depth(body: bytes) -> int:
    """The deepest nesting of objects and arrays in `body`, brackets inside strings ignored."""
    # Without a backslash no string holds an escaped quote: every other quote-separated piece is
    # outside the strings (a C-speed split, ~10x the regex on string-heavy bodies).
    outside = _STRING.sub(b"", body) if b"\\" in body else b"".join(body.split(b'"')[::2])
    skeleton = outside.translate(_LEVELS, _NOT_BRACKETS)
    return max(accumulate(array("b", skeleton)), default=0)


def json_problem(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why `body` is refused before decoding it ("bad request: ..."), or None."""
    if not body.isascii():
        try:
            body.decode()
        except UnicodeDecodeError as exc:
            return f"bad request: the body is not valid UTF-8 (byte {exc.start})"
    # A body cannot nest deeper than it has opening brackets: most stop at this count.
    if body.count(b"{") + body.count(b"[") > max_depth and json_depth(body) > max_depth:
        return f"bad request: JSON nested deeper than {max_depth} levels"
    return None
