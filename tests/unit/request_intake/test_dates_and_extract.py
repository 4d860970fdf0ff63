"""Vendor timestamps and value extraction from vendor JSON envelopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from request_intake.dates import add_calendar, parse_datetime
from request_intake.extract import display, first, first_raw, resolve, scalar
from request_intake.facts import parse_duration

SN_FORMATS = ("%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-07-06 18:59:27", datetime(2015, 7, 6, 18, 59, 27, tzinfo=UTC)),  # ServiceNow value, UTC
        ("07/06/2015 11:59:27", datetime(2015, 7, 6, 11, 59, 27, tzinfo=UTC)),  # instance format
        ("03/07/2025", datetime(2025, 3, 7, tzinfo=UTC)),
        ("2017-01-30T18:32:14.716+0100", datetime(2017, 1, 30, 17, 32, 14, 716000, tzinfo=UTC)),  # Jira
        ("2019-02-15T19:01:52.971-0800", datetime(2019, 2, 16, 3, 1, 52, 971000, tzinfo=UTC)),
        ("2026-01-05T09:30:00Z", datetime(2026, 1, 5, 9, 30, tzinfo=UTC)),
        (1550286862039, datetime(2019, 2, 16, 3, 14, 22, 39000, tzinfo=UTC)),  # Jira epoch ms
        ("1550286862039", datetime(2019, 2, 16, 3, 14, 22, 39000, tzinfo=UTC)),
        (1550286862, datetime(2019, 2, 16, 3, 14, 22, tzinfo=UTC)),  # epoch seconds
        ("", None),
        ("²", None),
        ("yesterday", None),
        (None, None),
        (True, None),
        ({"a": 1}, None),
    ],
)
def test_parse_datetime(value: Any, expected: datetime | None) -> None:
    assert parse_datetime(value, formats=SN_FORMATS) == expected


def test_zone_less_values_take_the_given_zone() -> None:
    parsed = parse_datetime("2026-01-05 10:00:00", zone=ZoneInfo("Europe/Berlin"), formats=SN_FORMATS)
    assert parsed == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert parsed is not None
    assert parsed.tzinfo is UTC


def test_calendar_addition_clamps_to_the_month_end() -> None:
    start = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert add_calendar(start, months=1) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert add_calendar(start, years=1, months=13) == datetime(2028, 2, 29, 12, tzinfo=UTC)
    assert add_calendar(start, rest=timedelta(hours=1)) == datetime(2026, 1, 31, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("P30D", timedelta(days=30)), ("PT8H", timedelta(hours=8)), ("PT20S", timedelta(seconds=20)), ("P1M", timedelta(days=31)), ("P1Y", timedelta(days=365)), ("P1W", timedelta(days=7))],
)  # fmt: skip
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text, datetime(2026, 1, 1, tzinfo=UTC)) == expected


@pytest.mark.parametrize("text", ["30d", "P0D", "-P1D", "P1.5M", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):  # isodate's ISO8601Error is a ValueError
        parse_duration(text, datetime(2026, 1, 1, tzinfo=UTC))


RECORD = {
    "state": {"display_value": "Open", "value": "1"},
    "opened_by": {"link": "https://x/api/now/table/sys_user/abc", "value": "abc"},
    "variables.requested_for": {"display_value": "Alice", "value": "alice@example.com"},
    "variables": {"access_system": "okta", "nested": {"deep": 3}},
    "customfield_1": {"value": "Okta", "id": "10100"},
    "user": {"accountId": "5b10", "emailAddress": "Bob@example.com", "displayName": "Bob"},
    "list": [{"name": "a"}, {"name": "b"}],
    "empty": "",
    "flag": False,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("state", "1"),
        ("state.display_value", "Open"),
        ("opened_by", "abc"),
        ("opened_by.link", "https://x/api/now/table/sys_user/abc"),
        ("variables.requested_for", "alice@example.com"),
        ("variables.access_system", "okta"),
        ("variables.nested.deep", "3"),
        ("customfield_1", "Okta"),
        ("user", "Bob@example.com"),
        ("user.accountId", "5b10"),
        ("list.1.name", "b"),
        ("list", "a"),
        ("list.7.name", None),
        ("empty", None),
        ("flag", "false"),
        ("absent", None),
        ("state.value.more", None),
    ],
)
def test_resolve_and_scalar(path: str, expected: str | None) -> None:
    assert scalar(resolve(RECORD, path)) == expected


def test_display_prefers_the_display_value() -> None:
    assert display(RECORD["state"]) == "Open"
    assert display("plain") == "plain"


def test_first_takes_the_first_non_empty_path() -> None:
    assert first(RECORD, ("empty", "absent", "variables.access_system")) == ("variables.access_system", "okta")
    assert first(RECORD, ("empty",)) is None
    assert first_raw(RECORD, ("empty", "list")) == ("list", [{"name": "a"}, {"name": "b"}])
    assert first_raw(RECORD, ("state",)) == ("state", "1")
