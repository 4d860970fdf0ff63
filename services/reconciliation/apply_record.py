"""Fold one entitlement record event into the join state (pure).

Each record event carries the whole record, so the latest one (by `record_version`, else event time) replaces
the previous. Some changes announce a condition that later, unrelated changes do not undo (an owner
offboarded, a revoke unconfirmed, a recertification overdue, an exception ended): those are kept as
timestamps until the change that clears them.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.entitlements import EntitlementChange, EntitlementEvent, EntitlementStatus
from reconciliation.state import EntitlementState, RecordFact

LIVE_STATUSES = (EntitlementStatus.ACTIVE, EntitlementStatus.REVOKING)


def is_older(event: EntitlementEvent, prev: RecordFact) -> bool:
    if event.record_version is not None and prev.record_version is not None:
        return event.record_version < prev.record_version
    return event.occurred_at < prev.occurred_at


def _sticky(
    change: EntitlementChange, sets: EntitlementChange, at: datetime, prev: datetime | None, clears: bool
) -> datetime | None:
    if change == sets:
        return prev or at
    return None if clears else prev


def apply_record(state: EntitlementState, event: EntitlementEvent) -> EntitlementState:
    prev = state.record
    if prev is not None and is_older(event, prev):
        return state
    change, at, status = event.change, event.occurred_at, event.status
    ended = status not in LIVE_STATUSES and status != EntitlementStatus.PENDING
    owner_offboarded = _sticky(
        change,
        EntitlementChange.OWNER_OFFBOARDED,
        at,
        prev.owner_offboarded_at if prev else None,
        clears=change == EntitlementChange.OWNER_CHANGED or (prev is not None and event.owner != prev.owner),
    )
    revoke_unconfirmed = _sticky(
        change,
        EntitlementChange.REVOKE_UNCONFIRMED,
        at,
        prev.revoke_unconfirmed_at if prev else None,
        clears=status != EntitlementStatus.REVOKING,
    )
    recert_overdue = _sticky(
        change,
        EntitlementChange.RECERTIFICATION_OVERDUE,
        at,
        prev.recert_overdue_at if prev else None,
        clears=change in (EntitlementChange.RECERTIFIED, EntitlementChange.RENEWED) or ended,
    )
    exception_ended = _sticky(
        change,
        EntitlementChange.EXCEPTION_ENDED,
        at,
        prev.exception_ended_at if prev else None,
        clears=change == EntitlementChange.RENEWED or ended,
    )
    reconfirmed = change in (EntitlementChange.ACTIVATED, EntitlementChange.VERIFIED, EntitlementChange.RENEWED)
    record = RecordFact(
        status=status,
        change=change.value,
        event_id=event.event_id,
        occurred_at=at,
        record_version=event.record_version,
        reason=event.reason,
        principal_kind=event.principal_kind,
        owner=event.owner,
        ticket_numbers=tuple(t.ticket_number for t in event.tickets),
        ticket_kinds=tuple(t.kind for t in event.tickets),
        granted_at=event.granted_at,
        expires_at=event.expires_at,
        exception_window_end=event.exception_window_end,
        recertification_due_at=event.recertification_due_at,
        last_recertified_at=event.last_recertified_at,
        revoke_requested_at=event.revoke_requested_at,
        revoke_confirm_by=event.revoke_confirm_by,
        owner_offboarded_at=owner_offboarded,
        revoke_unconfirmed_at=revoke_unconfirmed,
        recert_overdue_at=recert_overdue,
        exception_ended_at=exception_ended,
        gone_at_source=None if reconfirmed or prev is None else prev.gone_at_source,
    )
    return state.model_copy(update={"record": record})
