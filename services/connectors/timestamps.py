"""Vendor timestamps into timezone-aware datetimes.

Okta ISO-8601 with ms and `Z`; CloudTrail seconds `Z`; Entra 7-digit fractions and `+00:00`; GitHub
epoch milliseconds (integers); Kubernetes microseconds; Vault nanoseconds; CloudTrail's
`Jan 8, 2020 8:43:06 PM`; test corpora's `YYYY-MM-DD HH:MM:SS.fffffffff` without a zone. Times without
a zone are UTC (every source above logs in UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_ISO = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)"
    r"(?:[.,](?P<fraction>\d+))?\s*(?P<zone>Z|z|UTC|[+-]\d{2}:?\d{2})?$"
)
_EPOCH = re.compile(r"\d{9,17}(\.\d+)?")
_HUMAN_FORMATS = ("%b %d, %Y %I:%M:%S %p", "%b %d, %Y %H:%M:%S")
# Epoch values above this are milliseconds (1e11 s is the year 5138), above 1e14 microseconds.
_MS_THRESHOLD = 100_000_000_000
_US_THRESHOLD = 100_000_000_000_000
# The longest format above is ~35 characters; anything much longer is not a timestamp.
MAX_TIMESTAMP_CHARS = 64


def parse_timestamp(value: object) -> datetime:
    """Parse any of the vendor formats; raise ValueError (with the reason) when it is none of them."""
    if isinstance(value, bool) or value is None:
        raise ValueError("no timestamp")
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        raise ValueError(f"timestamp of type {type(value).__name__}")
    raw = value.strip()
    if len(raw) > MAX_TIMESTAMP_CHARS:
        raise ValueError(f"timestamp longer than {MAX_TIMESTAMP_CHARS} characters")
    if _EPOCH.fullmatch(raw):
        return _from_epoch(float(raw))
    match = _ISO.match(raw)
    if match:
        fraction = (match["fraction"] or "0")[:6].ljust(6, "0")
        clock = match["time"] if match["time"].count(":") == 2 else match["time"] + ":00"
        zone = match["zone"] or "+00:00"
        if zone in ("Z", "z", "UTC"):
            zone = "+00:00"
        elif ":" not in zone:
            zone = f"{zone[:3]}:{zone[3:]}"
        try:
            # In UTC, 0001-01-01T00:00+05:00 and 9999-12-31T23:59-05:00 fall outside datetime's range.
            return datetime.fromisoformat(f"{match['date']}T{clock}.{fraction}{zone}").astimezone(UTC)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"invalid timestamp {raw[:40]!r}: {exc}") from exc
    for fmt in _HUMAN_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"unrecognised timestamp {raw[:40]!r}")


def _from_epoch(number: float) -> datetime:
    if number >= _US_THRESHOLD:
        number /= 1_000_000
    elif number >= _MS_THRESHOLD:
        number /= 1000
    if number <= 0:
        raise ValueError("epoch timestamp must be positive")
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"epoch timestamp out of range: {exc}") from exc


def first_timestamp(*candidates: object) -> datetime | None:
    """The first candidate that parses, or None when none is present; raises on a present but bad value."""
    for candidate in candidates:
        if candidate is None or (isinstance(candidate, str) and not candidate.strip()):
            continue
        return parse_timestamp(candidate)
    return None


# A lifetime longer than this is no lifetime: read as "no expiry known" rather than a date past datetime.max.
MAX_LIFETIME = timedelta(days=36525)


def expires_after(start: datetime, seconds: object) -> datetime | None:
    """`start + seconds` for a positive integer TTL (Vault `token_ttl`, `lease_duration`), else None.
    A TTL beyond MAX_LIFETIME (`10**14`) is None too: it never expires in any sense we can record."""
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
        return None
    if seconds > MAX_LIFETIME.total_seconds():
        return None
    try:
        return start + timedelta(seconds=seconds)
    except OverflowError:  # a start near year 9999
        return None
