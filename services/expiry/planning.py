"""Per-entitlement decisions of the sweep, as pure functions of the record, the bookkeeping and "now".

The sweep's SQL only preselects candidate rows (cheaply, with indexes, under row locks); these functions
make the actual decision on the locked record, so a row that changed between selection and lock, or a
query that is a little too broad, can never cause a wrong action.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, RevocationTrigger
from closeloop.record import REVOCABLE_STATUSES, Cause, EntitlementRecord, derived_id
from expiry.backoff import RetrySchedule

AWAITING_CONFIRMATION = (EntitlementStatus.REVOKING, EntitlementStatus.EXPIRED)


@dataclass(frozen=True)
class RevokeDecision:
    trigger: RevocationTrigger
    change: EntitlementChange
    reason: str


def sweep_cause(record: EntitlementRecord, step: str) -> Cause:
    """A deterministic correlation id for a change no input event caused (a sweep step on one version)."""
    return Cause(correlation_id=derived_id("expiry", step, str(record.key), str(record.version)))


def expiry_decision(record: EntitlementRecord, now: datetime) -> RevokeDecision | None:
    """Revoke at the end of a break-glass window or at the TTL, whichever the record reached."""
    if record.status not in REVOCABLE_STATUSES:
        return None
    window_end = record.exception_window_end
    if window_end is not None and window_end <= now:
        return RevokeDecision(
            RevocationTrigger.EXCEPTION_WINDOW_END,
            EntitlementChange.REVOKE_REQUESTED,
            f"break-glass window ended at {window_end.isoformat()}",
        )
    if record.expires_at is not None and record.expires_at <= now:
        return RevokeDecision(
            RevocationTrigger.EXPIRY, EntitlementChange.EXPIRED, f"expired at {record.expires_at.isoformat()}"
        )
    return None


def is_exception_revoke(record: EntitlementRecord) -> bool:
    """The revoke in flight ends a break-glass window (EXCEPTION_EXPIRED if it outlives the SLA)."""
    window_end = record.exception_window_end
    if window_end is None:
        return False
    return record.revoke_requested_at is None or window_end <= record.revoke_requested_at


@dataclass(frozen=True)
class FollowUp:
    """Bookkeeping of a revoke that already missed its deadline (a row of expiry_revoke_followups)."""

    attempts: int
    unconfirmed_at: datetime
    next_attempt_at: datetime | None
    exception_ended_at: datetime | None = None
    command_id: str | None = None


@dataclass(frozen=True)
class ConfirmationStep:
    raise_unconfirmed: bool = False
    raise_exception_ended: bool = False
    # Attempt number to send now under the original command id (None: nothing to resend now).
    resend_attempt: int | None = None
    # When the attempt after this step goes out (None: attempts used up).
    next_attempt_at: datetime | None = None

    @property
    def empty(self) -> bool:
        return not (self.raise_unconfirmed or self.raise_exception_ended or self.resend_attempt)


def awaiting_confirmation(record: EntitlementRecord) -> bool:
    return record.status in AWAITING_CONFIRMATION and not record.revoke_confirmed()


def confirmation_step(
    record: EntitlementRecord,
    followup: FollowUp | None,
    *,
    now: datetime,
    sla: timedelta,
    schedule: RetrySchedule,
    attempts_sent: int = 1,
) -> ConfirmationStep | None:
    """What to do about a revoke whose confirmation may be overdue; None when nothing is due.

    First miss: raise REVOKE_UNCONFIRMED (and EXCEPTION_EXPIRED's event for a break-glass revoke) and
    schedule the next attempt. Later: resend when the next attempt is due; its own deadline is
    `now + sla`, and a miss of that one waits the next backoff step before the attempt after.
    """
    if not awaiting_confirmation(record) or record.revoke_confirm_by is None:
        return None
    if now < record.revoke_confirm_by:
        return None
    exception = is_exception_revoke(record)
    if followup is None:
        return ConfirmationStep(
            raise_unconfirmed=True,
            raise_exception_ended=exception,
            next_attempt_at=schedule.next_attempt_at(attempts_sent, now),
        )
    if followup.next_attempt_at is None or now < followup.next_attempt_at:
        if exception and followup.exception_ended_at is None:
            return ConfirmationStep(raise_exception_ended=True, next_attempt_at=followup.next_attempt_at)
        return None
    attempt = followup.attempts + 1
    deadline = now + sla
    return ConfirmationStep(
        raise_exception_ended=exception and followup.exception_ended_at is None,
        resend_attempt=attempt,
        next_attempt_at=schedule.next_attempt_at(attempt, deadline),
    )
