"""Vendor timestamps to aware UTC datetimes.

ServiceNow: "YYYY-MM-DD HH:MM:SS" without a zone (UTC in `value`) and instance formats such as
MM/dd/yyyy, even in `value`. Jira: ISO 8601 with `+0100`-style offsets and epoch milliseconds.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import MAXYEAR, MINYEAR, UTC, datetime, timedelta, tzinfo

# Epoch values above this are milliseconds (year 2286 in seconds).
_MILLIS_THRESHOLD = 10_000_000_000
# Longer than any date format a vendor sends: such a value is not a date (and is not parsed at all).
MAX_DATE_CHARS = 64


def from_epoch(value: float) -> datetime:
    seconds = value / 1000 if abs(value) >= _MILLIS_THRESHOLD else value
    return datetime.fromtimestamp(seconds, tz=UTC)


def parse_datetime(value: object, *, zone: tzinfo = UTC, formats: Sequence[str] = ()) -> datetime | None:
    """Parse an ISO 8601 / epoch / vendor-format timestamp; None when it is none of those.

    Zone-less values are read in `zone`. The result is always timezone-aware and in UTC.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return from_epoch(value)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > MAX_DATE_CHARS:
        return None
    if text.isascii() and text.isdigit():
        return parse_datetime(int(text), zone=zone)
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        for fmt in formats:
            try:
                parsed = datetime.strptime(text, fmt)  # zone applied below
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 is before datetime.min in UTC
        return None


def add_calendar(start: datetime, years: int = 0, months: int = 0, rest: timedelta = timedelta()) -> datetime:
    """`start` plus calendar years and months (clamped to the month's last day), plus `rest`."""
    month_index = start.month - 1 + months + 12 * years
    year, month = start.year + month_index // 12, month_index % 12 + 1
    if not MINYEAR <= year <= MAXYEAR:  # `P10000Y`: no such date (the clamping below would never end)
        raise ValueError(f"year {year} is out of range")
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day) + rest
