"""Fold one ticket transition into the join's view of that ticket (pure).

Transitions can arrive out of order (two ITSM webhooks racing, a replay): the latest transition is chosen by
the vendor revision counter when both sides have one, else by event time; milestones (approved, fulfilled,
closed) are kept from whichever event carried them, so a late `approved` still counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from closeloop.contracts.ticket_interpretation import interpret
from closeloop.contracts.tickets import TicketEvent, TicketTransition
from reconciliation.state import TicketFact

T = TypeVar("T")


def _order(
    version: int | None, occurred_at: datetime, event_id: str, other_has_version: bool
) -> tuple[int, datetime, str]:
    return (version if version is not None and other_has_version else -1, occurred_at, event_id)


def is_newer(event: TicketEvent, prev: TicketFact) -> bool:
    both = event.version is not None and prev.version is not None
    return _order(event.version, event.occurred_at, event.event_id, both) >= _order(
        prev.version, prev.occurred_at, prev.event_id, both
    )


def _or(new: T | None, old: T | None) -> T | None:
    return new if new is not None else old


def _earliest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def merge_ticket(prev: TicketFact | None, event: TicketEvent, *, principal: str | None, key: str | None) -> TicketFact:
    meaning = interpret(event)
    approval_time = meaning.approval_seen_at
    human_approved = meaning.human_approved
    fulfilled = (
        event.occurred_at
        if event.transition in (TicketTransition.FULFILLED, TicketTransition.CLOSED_COMPLETE)
        else None
    )
    closing = event.transition in (TicketTransition.CLOSED_COMPLETE, TicketTransition.CLOSED_CANCELLED)

    if prev is not None and not is_newer(event, prev):
        # A late event: keep the latest transition, take the milestones it proves.
        return prev.model_copy(
            update={
                "approved_at": _earliest(prev.approved_at, approval_time),
                "approval_event_id": prev.approval_event_id or (event.event_id if approval_time else None),
                "human_approved": prev.human_approved or human_approved,
                "fulfilled_at": _earliest(prev.fulfilled_at, fulfilled),
            }
        )

    access = event.access
    approved_at = _earliest(prev.approved_at if prev else None, approval_time)
    approval_event_id = (prev.approval_event_id if prev else None) or (event.event_id if approval_time else None)
    if closing:
        closed_at = event.closed_at or event.occurred_at
    elif event.transition == TicketTransition.REOPENED:
        closed_at = None
    else:
        closed_at = prev.closed_at if prev else None

    old = prev
    return TicketFact(
        system=event.system,
        ticket_id=event.ticket_id,
        ticket_number=event.ticket_number,
        ticket_url=_or(event.ticket_url, old.ticket_url if old else None),
        kind=event.kind,
        transition=event.transition,
        state=event.state,
        version=event.version,
        occurred_at=event.occurred_at,
        event_id=event.event_id,
        correlation_id=event.correlation_id,
        key=_or(key, old.key if old else None),
        principal=_or(principal, old.principal if old else None),
        resource=_or(access.resource if access else None, old.resource if old else None),
        privilege=_or(access.privilege.strip().lower() if access else None, old.privilege if old else None),
        requested_for_kind=event.requested_for_kind,
        approved_at=approved_at,
        approval_event_id=approval_event_id,
        human_approved=(old.human_approved if old else False) or human_approved,
        fulfilled_at=_earliest(old.fulfilled_at if old else None, fulfilled),
        closed_at=closed_at,
        rejected_at=event.occurred_at
        if event.transition == TicketTransition.REJECTED
        else (old.rejected_at if old else None),
        duration=_or(event.requested_duration, old.duration if old else None),
        requested_until=_or(event.requested_until, old.requested_until if old else None),
        window_start=_or(event.window_start, old.window_start if old else None),
        window_end=_or(event.window_end, old.window_end if old else None),
        incident_ticket=_or(event.incident_ticket, old.incident_ticket if old else None),
        owner=_or(event.owner, old.owner if old else None),
        actor=event.actor,
    )


def put_ticket(tickets: tuple[TicketFact, ...], fact: TicketFact, limit: int) -> tuple[TicketFact, ...]:
    """Replace the ticket's fact (or add it), keeping the `limit` most recent tickets."""
    others = [t for t in tickets if t.ticket_id != fact.ticket_id]
    ordered = sorted([*others, fact], key=lambda t: (t.occurred_at, t.ticket_id), reverse=True)
    return tuple(ordered[:limit])
