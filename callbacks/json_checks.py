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
all C loops over the bytes; a non-ASCII body adds a UTF-8 decode. Only a body with more than
MAX_JSON_DEPTH `{`/`[` bytes pays for the exact scan, also C loops (`json_depth`), which costs
less than msgspec's decode of the same body; a 1 MiB nesting attack (it was a RecursionError) is
refused in milliseconds. The figures: bench/RESULTS.md (`python -m bench.micro`).
"""

from __future__ import annotations

import msgspec

# The whole request body: Centrifugo's envelope is one level, so a publication's `data` (or
# connect/rpc `data`, or the server API's `data`) may nest 63 levels.
MAX_JSON_DEPTH = 64

# What a decode may raise on hostile bytes: msgspec's errors and UnicodeDecodeError are all
# ValueErrors; RecursionError is not.
DECODE_ERRORS = (msgspec.DecodeError, ValueError, RecursionError)

_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'{}[]"')))  # brackets, and quotes that hide some
_ONE_KIND = bytes.maketrans(b"{}", b"[]")  # depth does not care which bracket


def json_depth(body: bytes, *, limit: int = MAX_JSON_DEPTH) -> int:
    """The deepest nesting of objects and arrays in `body`, brackets inside strings ignored; a
    result above `limit` may stop the count early. For a malformed body, an upper bound of what
    a parser reaches before it finds the error.

    All C loops over bytes: drop escaped backslashes, then escaped quotes (as JSON reads escapes,
    left to right), keep only brackets and quotes, drop the strings, then remove the innermost
    `[]` pairs once per level. Typical strings hold no bracket, so `""` is all that is left of
    them; only when a quote survives that are quote-separated pieces taken apart."""
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = body.translate(None, _NOT_STRUCTURE)
    outside = skeleton.replace(b'""', b"")
    if b'"' in outside:  # some string holds a bracket: every other quote-separated piece is outside
        outside = b"".join(skeleton.split(b'"')[::2])
    levels = outside.translate(_ONE_KIND)
    if b"[" * (limit + 1) in levels:
        return limit + 1
    passes = 0
    while b"[]" in levels:
        levels = levels.replace(b"[]", b"")
        passes += 1
        if passes > limit:
            break
    # What is left is unmatched, `]...][...[`: each unmatched `[` can only deepen what follows it.
    return passes + levels.count(b"[")


def json_problem(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why `body` is refused before decoding it ("bad request: ..."), or None."""
    if not body.isascii():
        try:
            body.decode()
        except UnicodeDecodeError as exc:
            return f"bad request: the body is not valid UTF-8 (byte {exc.start})"
    # A body cannot nest deeper than it has opening brackets: most stop at this count.
    if body.count(b"{") + body.count(b"[") > max_depth and json_depth(body, limit=max_depth) > max_depth:
        return f"bad request: JSON nested deeper than {max_depth} levels"
    return None


def data_problem(data: bytes) -> str | None:
    """Why a client's `data` that arrived base64-encoded (`b64data`: the proxies run with
    binary_encoding) is refused, or None. It sat flat in the body, so the body's check did not see
    its nesting: text nested deeper than a body's `data` may be (MAX_JSON_DEPTH - 1) is refused as
    if it had come as JSON. Bytes that are not UTF-8 are binary, which has no nesting."""
    limit = MAX_JSON_DEPTH - 1
    if data.count(b"{") + data.count(b"[") <= limit:
        return None
    if not data.isascii():
        try:
            data.decode()
        except UnicodeDecodeError:
            return None
    if json_depth(data, limit=limit) > limit:
        return f"bad request: JSON nested deeper than {limit} levels"
    return None
