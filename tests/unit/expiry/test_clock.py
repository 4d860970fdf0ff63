from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from expiry.clock import FakeClock, SystemClock


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 3, 1, 12, tzinfo=UTC)
    clock.advance(hours=2)
    assert clock.now() == datetime(2026, 3, 1, 14, tzinfo=UTC)
    clock.advance(timedelta(days=1))
    assert clock.now() == datetime(2026, 3, 2, 14, tzinfo=UTC)


def test_fake_clock_normalises_to_utc_and_refuses_naive_or_backwards() -> None:
    clock = FakeClock(datetime(2026, 3, 1, 14, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2026, 3, 1))
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(seconds=-1)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(datetime(2026, 1, 1, tzinfo=UTC))
    clock.set(datetime(2026, 4, 1, tzinfo=UTC))
    assert clock.now() == datetime(2026, 4, 1, tzinfo=UTC)


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
