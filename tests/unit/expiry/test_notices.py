from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from expiry.notices import NoticePlan, describe_offset, earliest_notice_at, plan_notices

EXPIRES = datetime(2026, 6, 30, 12, tzinfo=UTC)
OFFSETS = (timedelta(days=7), timedelta(days=1))


def test_nothing_before_the_first_offset() -> None:
    plan = plan_notices(EXPIRES, OFFSETS, set(), EXPIRES - timedelta(days=8))
    assert plan == NoticePlan()
    assert plan.empty


def test_seven_day_notice_then_one_day_notice() -> None:
    first = plan_notices(EXPIRES, OFFSETS, set(), EXPIRES - timedelta(days=7))
    assert first == NoticePlan(send=timedelta(days=7))
    # Same offset already sent: nothing until the next offset.
    assert plan_notices(EXPIRES, OFFSETS, {timedelta(days=7)}, EXPIRES - timedelta(days=3)).empty
    second = plan_notices(EXPIRES, OFFSETS, {timedelta(days=7)}, EXPIRES - timedelta(hours=20))
    assert second == NoticePlan(send=timedelta(days=1))
    assert plan_notices(EXPIRES, OFFSETS, set(OFFSETS), EXPIRES - timedelta(hours=1)).empty


def test_after_downtime_only_the_nearest_notice_goes_out() -> None:
    plan = plan_notices(EXPIRES, OFFSETS, set(), EXPIRES - timedelta(hours=12))
    assert plan.send == timedelta(days=1)
    assert plan.superseded == (timedelta(days=7),)


def test_no_notice_once_expired() -> None:
    assert plan_notices(EXPIRES, OFFSETS, set(), EXPIRES).empty
    assert plan_notices(EXPIRES, OFFSETS, set(), EXPIRES + timedelta(days=1)).empty


def test_earliest_notice_and_descriptions() -> None:
    assert earliest_notice_at(EXPIRES, OFFSETS) == EXPIRES - timedelta(days=7)
    assert earliest_notice_at(EXPIRES, ()) is None
    assert [describe_offset(o) for o in (timedelta(days=7), timedelta(hours=12), timedelta(minutes=30))] == [
        "7d",
        "12h",
        "30m",
    ]
    assert describe_offset(timedelta(seconds=90)) == "90s"


@given(
    offsets=st.sets(st.integers(min_value=1, max_value=30 * 86400), min_size=1, max_size=5),
    steps=st.lists(st.integers(min_value=0, max_value=3 * 86400), min_size=1, max_size=40),
)
def test_every_offset_handled_at_most_once_whatever_the_sweep_times(offsets: set[int], steps: list[int]) -> None:
    deltas = tuple(timedelta(seconds=o) for o in offsets)
    now = EXPIRES - timedelta(days=31)
    sent: list[timedelta] = []
    handled: set[timedelta] = set()
    for step in steps:
        now += timedelta(seconds=step)
        plan = plan_notices(EXPIRES, deltas, handled, now)
        if plan.send is not None:
            assert now < EXPIRES
            assert now >= EXPIRES - plan.send
            sent.append(plan.send)
            handled.add(plan.send)
        handled.update(plan.superseded)
    assert len(sent) == len(set(sent))
    # Sent notices are in order of decreasing offset (7d before 1d).
    assert sent == sorted(sent, reverse=True)


def test_offsets_before_the_grant_do_not_apply() -> None:
    granted = EXPIRES - timedelta(days=3)  # a 3-day grant: no 7-day notice, but a 1-day one
    early = plan_notices(EXPIRES, OFFSETS, set(), granted, since=granted)
    assert early == NoticePlan(superseded=(timedelta(days=7),))
    late = plan_notices(EXPIRES, OFFSETS, {timedelta(days=7)}, EXPIRES - timedelta(hours=12), since=granted)
    assert late == NoticePlan(send=timedelta(days=1))
    short = plan_notices(EXPIRES, OFFSETS, set(), EXPIRES - timedelta(seconds=4), since=EXPIRES - timedelta(seconds=5))
    assert short.send is None
    assert set(short.superseded) == set(OFFSETS)
