"""Times and durations as operators type them (commands and the Users page): clear errors, naming
what was expected."""

from __future__ import annotations

import datetime as dt
import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d{1,12})([smhdw]?)")  # 12 digits: past 10 years in any unit
MAX_SECONDS = 10 * 365 * 86400
# The times a ban's end or a token cutoff may be: tokens' iat is unix seconds (none before 1970), and
# PostgreSQL stores times Python cannot read back (year 10000, BC): one such row would break every
# process's access snapshot load.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def duration(text: str) -> dt.timedelta:
    """`90`, `90s`, `15m`, `2h`, `7d`, `1w` (a whole number and a unit; seconds without one)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"expected a duration such as 90s, 15m, 2h, 7d or 1w, got {text!r}")
    seconds = int(match[1]) * UNITS[match[2] or "s"]
    if not 1 <= seconds <= MAX_SECONDS:
        raise ValueError(f"a duration must be between 1 s and 10 years, got {text!r}")
    return dt.timedelta(seconds=seconds)


def moment(text: str) -> dt.datetime:
    """ISO 8601 (`2026-12-01T18:00:00+01:00`; without an offset it is UTC) or unix seconds."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return dt.datetime.fromtimestamp(float(text), tz=dt.UTC)
        value = dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        raise ValueError(
            f"expected a time as ISO 8601 (2026-12-01T18:00:00+01:00, UTC without an offset) or unix seconds, got {text!r}"
        ) from None
    return in_range(value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC))


def in_range(value: dt.datetime) -> dt.datetime:
    """`value` (aware) in UTC, if between EARLIEST and LATEST; else ValueError saying so."""
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:59:59-12:00 is in the year 10000 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"{value.isoformat()} is out of range: a time must be between 1970 and 9999 (UTC)")
    return utc
