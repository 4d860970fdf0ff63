from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, RevocationTrigger
from closeloop.contracts.identity import EntitlementKey
from closeloop.record import EntitlementRecord
from expiry.backoff import RetrySchedule
from expiry.planning import FollowUp, confirmation_step, expiry_decision, is_exception_revoke

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
KEY = EntitlementKey(principal="okta:user:bob@example.com", resource="okta:app:0oa1", privilege="assigned")
SLA = timedelta(minutes=15)
SCHEDULE = RetrySchedule(initial=timedelta(minutes=1), factor=2, maximum=timedelta(minutes=30), max_attempts=3)


def record(status: EntitlementStatus = EntitlementStatus.ACTIVE, **fields: Any) -> EntitlementRecord:
    return EntitlementRecord.new(KEY, status=status, **fields)


def revoking(**fields: Any) -> EntitlementRecord:
    base: dict[str, Any] = {
        "revoke_requested_at": NOW - SLA,
        "revoke_confirm_by": NOW,
        "verified_at": NOW - timedelta(days=1),
    }
    return record(EntitlementStatus.REVOKING, **{**base, **fields})


def test_expiry_decision() -> None:
    assert expiry_decision(record(expires_at=NOW + timedelta(seconds=1)), NOW) is None
    decision = expiry_decision(record(expires_at=NOW), NOW)
    assert decision is not None
    assert (decision.trigger, decision.change) == (RevocationTrigger.EXPIRY, EntitlementChange.EXPIRED)
    assert expiry_decision(record(), NOW) is None
    assert expiry_decision(record(EntitlementStatus.REVOKING, expires_at=NOW), NOW) is None
    assert expiry_decision(record(EntitlementStatus.REVOKED, expires_at=NOW), NOW) is None
    pending = expiry_decision(record(EntitlementStatus.PENDING, expires_at=NOW - timedelta(days=1)), NOW)
    assert pending is not None


def test_break_glass_end_wins_over_expiry() -> None:
    decision = expiry_decision(record(expires_at=NOW, exception_window_end=NOW), NOW)
    assert decision is not None
    assert decision.trigger is RevocationTrigger.EXCEPTION_WINDOW_END
    assert decision.change is EntitlementChange.REVOKE_REQUESTED


def test_exception_revoke_detection() -> None:
    assert is_exception_revoke(revoking(exception_window_end=NOW - timedelta(hours=1)))
    assert not is_exception_revoke(revoking())
    # Revoked before its window ended (offboarding during an incident): not an exception ending.
    assert not is_exception_revoke(revoking(exception_window_end=NOW + timedelta(hours=1)))


def test_nothing_before_the_deadline_or_once_confirmed() -> None:
    assert (
        confirmation_step(
            revoking(revoke_confirm_by=NOW + timedelta(seconds=1)), None, now=NOW, sla=SLA, schedule=SCHEDULE
        )
        is None
    )
    confirmed = record(
        EntitlementStatus.REVOKED,
        revoke_requested_at=NOW - SLA,
        revoke_confirm_by=NOW,
        verified_at=NOW - timedelta(minutes=1),
    )
    assert confirmation_step(confirmed, None, now=NOW, sla=SLA, schedule=SCHEDULE) is None
    assert confirmation_step(record(), None, now=NOW, sla=SLA, schedule=SCHEDULE) is None


def test_first_miss_raises_and_schedules_the_next_attempt() -> None:
    step = confirmation_step(revoking(), None, now=NOW, sla=SLA, schedule=SCHEDULE)
    assert step is not None
    assert step.raise_unconfirmed
    assert not step.raise_exception_ended
    assert step.resend_attempt is None
    assert step.next_attempt_at == NOW + timedelta(minutes=1)


def test_first_miss_of_an_exception_revoke_also_ends_the_exception() -> None:
    step = confirmation_step(revoking(exception_window_end=NOW - SLA), None, now=NOW, sla=SLA, schedule=SCHEDULE)
    assert step is not None
    assert step.raise_unconfirmed
    assert step.raise_exception_ended


@pytest.mark.parametrize(
    ("attempts", "expected_next"),
    [(1, NOW + SLA + timedelta(minutes=2)), (2, None)],
)
def test_resend_when_due_with_growing_waits(attempts: int, expected_next: datetime | None) -> None:
    followup = FollowUp(attempts=attempts, unconfirmed_at=NOW - timedelta(minutes=5), next_attempt_at=NOW)
    step = confirmation_step(revoking(), followup, now=NOW, sla=SLA, schedule=SCHEDULE)
    assert step is not None
    assert not step.raise_unconfirmed
    assert step.resend_attempt == attempts + 1
    assert step.next_attempt_at == expected_next


def test_no_resend_before_due_or_when_used_up() -> None:
    waiting = FollowUp(attempts=1, unconfirmed_at=NOW, next_attempt_at=NOW + timedelta(seconds=1))
    assert confirmation_step(revoking(), waiting, now=NOW, sla=SLA, schedule=SCHEDULE) is None
    used_up = FollowUp(attempts=3, unconfirmed_at=NOW, next_attempt_at=None)
    assert confirmation_step(revoking(), used_up, now=NOW + timedelta(days=9), sla=SLA, schedule=SCHEDULE) is None
