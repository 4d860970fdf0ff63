from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expiry.backoff import RetrySchedule

SCHEDULE = RetrySchedule(initial=timedelta(minutes=1), factor=2.0, maximum=timedelta(minutes=10), max_attempts=6)


def test_waits_double_after_each_miss_up_to_the_cap() -> None:
    waits = [SCHEDULE.wait_after(attempt) for attempt in range(1, 7)]
    assert waits == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(minutes=8),
        timedelta(minutes=10),
        timedelta(minutes=10),
    ]


def test_next_attempt_until_attempts_are_used_up() -> None:
    missed = datetime(2026, 5, 1, tzinfo=UTC)
    assert SCHEDULE.next_attempt_at(1, missed) == missed + timedelta(minutes=1)
    assert SCHEDULE.next_attempt_at(5, missed) == missed + timedelta(minutes=10)
    assert SCHEDULE.next_attempt_at(6, missed) is None
    assert not SCHEDULE.may_retry(6)
    assert SCHEDULE.may_retry(5)


def test_invalid_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="initial"):
        RetrySchedule(initial=timedelta(minutes=5), factor=2, maximum=timedelta(minutes=1), max_attempts=3)
    with pytest.raises(ValueError, match="factor"):
        RetrySchedule(initial=timedelta(minutes=1), factor=0.5, maximum=timedelta(minutes=1), max_attempts=3)
    with pytest.raises(ValueError, match="attempts start at 1"):
        SCHEDULE.wait_after(0)


@given(attempt=st.integers(min_value=1, max_value=10_000))
def test_wait_is_monotonic_and_bounded(attempt: int) -> None:
    wait = SCHEDULE.wait_after(attempt)
    assert SCHEDULE.initial <= wait <= SCHEDULE.maximum
    assert SCHEDULE.wait_after(attempt + 1) >= wait
