"""Vendor time formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.timestamps import first_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-01T00:00:00.000Z", datetime(2024, 1, 1, tzinfo=UTC)),  # Okta
        ("2024-10-15T08:28:01Z", datetime(2024, 10, 15, 8, 28, 1, tzinfo=UTC)),  # CloudTrail
        ("2026-07-17T10:12:27.1851389Z", datetime(2026, 7, 17, 10, 12, 27, 185138, tzinfo=UTC)),  # Entra, 7 digits
        ("2022-01-22T18:15:02.5168093+00:00", datetime(2022, 1, 22, 18, 15, 2, 516809, tzinfo=UTC)),
        (1741611463961, datetime(2025, 3, 10, 12, 57, 43, 961000, tzinfo=UTC)),  # GitHub epoch ms
        ("2025-07-16T10:12:56.525137Z", datetime(2025, 7, 16, 10, 12, 56, 525137, tzinfo=UTC)),  # k8s
        ("2020-12-01T20:29:04.356625452Z", datetime(2020, 12, 1, 20, 29, 4, 356625, tzinfo=UTC)),  # Vault ns
        ("Jan 8, 2020 8:43:06 PM", datetime(2020, 1, 8, 20, 43, 6, tzinfo=UTC)),  # CloudTrail createDate
        ("2020-11-25 21:27:03.496000000", datetime(2020, 11, 25, 21, 27, 3, 496000, tzinfo=UTC)),  # no zone: UTC
        ("2017-01-30T18:32:14.716+0100", datetime(2017, 1, 30, 17, 32, 14, 716000, tzinfo=UTC)),  # no colon
        (1583364382, datetime(2020, 3, 4, 23, 26, 22, tzinfo=UTC)),  # epoch seconds
    ],
)
def test_vendor_formats(value: object, expected: datetime) -> None:
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed.tzinfo is not None


def test_offsets_are_converted_to_utc() -> None:
    parsed = parse_timestamp("2020-05-28T13:40:18-05:00")
    assert parsed == datetime(2020, 5, 28, 13, 40, 18, tzinfo=timezone(timedelta(hours=-5)))
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["yesterday", "2024-13-45T00:00:00Z", "", True, {"t": 1}, -5])
def test_garbage_is_rejected(value: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_timestamp(value)


def test_first_timestamp_skips_absent_values_and_rejects_bad_present_ones() -> None:
    assert first_timestamp(None, "", "2024-01-01T00:00:00Z") == datetime(2024, 1, 1, tzinfo=UTC)
    assert first_timestamp(None, None) is None
    with pytest.raises(ValueError, match="unrecognised"):
        first_timestamp("not a time", "2024-01-01T00:00:00Z")
