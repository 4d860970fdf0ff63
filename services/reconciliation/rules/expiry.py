"""EXPIRED_STILL_LIVE and EXCEPTION_EXPIRED: access past its end and still live at the source.

The end is the record's `expires_at` (or, with no record, the end of the approving tickets). Exception /
break-glass access ends with its window, its ticket closing, or expiry's `exception_ended` change; it raises
EXCEPTION_EXPIRED (critical) instead of EXPIRED_STILL_LIVE. While a revoke is in flight (record `revoking`)
the finding is REVOKE_UNCONFIRMED's once its SLA passes, not this one. Both wait the expiry grace window
after the end: expiry revokes at the deadline and the source needs a moment to confirm.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from closeloop.contracts.entitlements import EntitlementStatus
from closeloop.contracts.tickets import TicketKind
from reconciliation.rules.approvals import approvals
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds, iso, later
from reconciliation.state import TicketFact

EXPIRED = DriftRule.EXPIRED_STILL_LIVE
EXCEPTION = DriftRule.EXCEPTION_EXPIRED


def exception_tickets(view: JoinView, now: datetime) -> list[TicketFact]:
    return [t for t in approvals(view, now, include_expired=True) if t.kind == TicketKind.EXCEPTION]


def is_exception(view: JoinView, now: datetime) -> bool:
    record = view.state.record
    return (record is not None and record.is_exception) or bool(exception_tickets(view, now))


def access_end(view: JoinView, now: datetime) -> datetime | None:
    """When the entitlement ends: the record's expiry, else the latest end of its approvals (None: open-ended)."""
    record = view.state.record
    if record is not None:
        if record.expires_at is not None:
            return record.expires_at
        if record.status == EntitlementStatus.EXPIRED:
            return record.occurred_at
        return None
    found = [t for t in approvals(view, now, include_expired=True) if t.kind != TicketKind.EXCEPTION]
    if not found or any(t.valid_until is None for t in found):
        return None
    return later(*(t.valid_until for t in found))


def expired_still_live(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    state = view.state
    if not state.live or is_exception(view, now):
        return clear(EXPIRED)
    if state.record is not None and state.record.status == EntitlementStatus.REVOKING:
        return clear(EXPIRED)
    end = access_end(view, now)
    if end is None:
        return clear(EXPIRED)
    deadline = end + policy.expiry_grace
    if now < deadline:
        return clear(EXPIRED, next_check=deadline)
    return holds(
        EXPIRED,
        Evidence(
            message=f"{state.key} expired {iso(end)} and is still live at the source",
            tickets=tuple(approvals(view, now, include_expired=True)),
            facts=(("expires_at", iso(end)),),
            include_record=state.record is not None,
        ),
        due_at=deadline,
    )


def exception_end(view: JoinView, now: datetime) -> tuple[datetime, str] | None:
    record = view.state.record
    ends: list[tuple[datetime, str]] = []
    if record is not None and record.exception_window_end is not None:
        ends.append((record.exception_window_end, "exception window ended"))
    if record is not None and record.exception_ended_at is not None:
        ends.append((record.exception_ended_at, "expiry announced the exception ended"))
    for ticket in exception_tickets(view, now):
        if ticket.window_end is not None:
            ends.append((ticket.window_end, f"window of {ticket.ticket_number} ended"))
        if ticket.closed_at is not None:
            ends.append((ticket.closed_at, f"exception ticket {ticket.ticket_number} closed"))
    return min(ends) if ends else None


def exception_expired(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    state = view.state
    if not state.live or not is_exception(view, now):
        return clear(EXCEPTION)
    standing = [t for t in approvals(view, now) if t.kind != TicketKind.EXCEPTION]
    if standing:
        return clear(EXCEPTION)  # the access was approved as standing access since
    end = exception_end(view, now)
    if end is None:
        return clear(EXCEPTION)
    deadline = end[0] + policy.expiry_grace
    if now < deadline:
        return clear(EXCEPTION, next_check=deadline)
    return holds(
        EXCEPTION,
        Evidence(
            message=f"exception access {state.key} is still live: {end[1]} {iso(end[0])}",
            tickets=tuple(exception_tickets(view, now)),
            facts=(("exception_end", iso(end[0])), ("ended_because", end[1])),
            include_record=state.record is not None,
        ),
        due_at=deadline,
    )
