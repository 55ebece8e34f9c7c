"""Durations and points in time as users write them: '30m', '2h', '7d', ISO dates.

Pure functions; the current time is always passed in.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """'90m' -> 90 minutes. Raises ValueError with the accepted forms."""
    m = _DURATION.match(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"expected a duration like '90s', '30m', '2h', '7d' or '2w', found {text!r}")
    try:
        return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    except OverflowError:
        raise ValueError(f"a duration of at most 999999999 days, found {text!r}") from None


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_when(text: str, now: datetime) -> datetime:
    """A point in time: relative ('24h', '7d' ago) or an ISO date/datetime (UTC if naive)."""
    try:
        delta = parse_duration(text)
    except ValueError:
        pass
    else:
        try:
            return now - delta
        except OverflowError:
            raise ValueError(f"a time after the year 1, found {text!r} ago") from None
    try:
        if len(text.strip()) == 10:
            d = date.fromisoformat(text.strip())
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"expected an ISO date or datetime (2026-11-20, 2026-11-20T08:00) or a relative "
            f"time (90m, 24h, 7d, 2w), found {text!r}"
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_iso(dt: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the second: the one format the store and JSON use."""
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    # isoformat is three times faster than strftime, and the store writes a few per item.
    return dt.isoformat(timespec="seconds")[:-6] + "Z"


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
