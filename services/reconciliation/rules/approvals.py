"""Join queries shared by the rules: which tickets approve an entitlement, which closures require its removal.

- An approval is an approving ticket (access request, exception, recertification) that was approved and was
  neither rejected nor cancelled. A removal closure (a completed revocation / offboarding / project-end
  ticket, or a cancelled access request) voids every approval given before it: access granted again later
  needs a new approval.
- Approvals for the same principal and resource at another privilege ("siblings") cover a grant when they
  approve the same or a stronger privilege (policy's privilege order).
"""

from __future__ import annotations

from datetime import datetime

from reconciliation.rules.base import JoinView, RulePolicy, later
from reconciliation.state import APPROVING_KINDS, REMOVAL_KINDS, EntitlementState, TicketFact


def removal_closures(view: JoinView) -> list[tuple[TicketFact, datetime]]:
    closures = []
    for ticket in view.state.tickets:
        closed = ticket.removal_closed_at
        if closed is not None:
            closures.append((ticket, closed))
    for ticket in view.principal_tickets:
        closed = ticket.removal_closed_at
        if closed is not None and ticket.kind in REMOVAL_KINDS:
            closures.append((ticket, closed))
    return closures


def last_removal(view: JoinView) -> tuple[TicketFact, datetime] | None:
    def compute() -> tuple[TicketFact, datetime] | None:
        closures = removal_closures(view)
        return max(closures, key=lambda c: c[1]) if closures else None

    found: tuple[TicketFact, datetime] | None = view.remember("last_removal", compute)
    return found


def approvals(view: JoinView, now: datetime, *, include_expired: bool = False) -> tuple[TicketFact, ...]:
    """Approving tickets of the exact key, not voided by a later removal; unexpired unless asked."""
    found: tuple[TicketFact, ...] = view.remember(
        ("approvals", now, include_expired), lambda: tuple(_approvals(view, now, include_expired))
    )
    return found


def _approvals(view: JoinView, now: datetime, include_expired: bool) -> list[TicketFact]:
    removal = last_removal(view)
    voided_until = removal[1] if removal else None
    found = []
    for ticket in view.state.tickets:
        if ticket.kind not in APPROVING_KINDS or ticket.approved_at is None or ticket.cancelled:
            continue
        if voided_until is not None and ticket.approved_at <= voided_until:
            continue
        if include_expired or ticket.approves_at(now):
            found.append(ticket)
    return found


def _sibling_view(view: JoinView, sibling: EntitlementState) -> JoinView:
    return JoinView(state=sibling, principal=view.principal, person_tickets=view.person_tickets)


def sibling_approvals(view: JoinView, now: datetime, *, include_expired: bool = False) -> list[TicketFact]:
    if not view.siblings:
        return []
    found: list[TicketFact] = []
    for sibling in view.siblings:
        found += approvals(_sibling_view(view, sibling), now, include_expired=include_expired)
    return found


def stronger_approvals(
    view: JoinView, now: datetime, policy: RulePolicy, *, include_expired: bool = False
) -> list[TicketFact]:
    granted = view.state.privilege
    return [
        t
        for t in sibling_approvals(view, now, include_expired=include_expired)
        if t.privilege is not None and policy.covers(t.privilege, granted)
    ]


def weaker_approvals(view: JoinView, now: datetime, policy: RulePolicy) -> list[TicketFact]:
    granted = view.state.privilege
    weaker = []
    for ticket in sibling_approvals(view, now):
        order = policy.compare(ticket.privilege, granted) if ticket.privilege else None
        if order is not None and order < 0:
            weaker.append(ticket)
    return weaker


def record_approves(view: JoinView) -> bool:
    record = view.state.record
    return record is not None and record.approved_by_record


def covered(view: JoinView, now: datetime, policy: RulePolicy, *, include_expired: bool) -> bool:
    """Some approval (exact, a stronger sibling, or the record) stands behind the entitlement."""
    return (
        bool(approvals(view, now, include_expired=include_expired))
        or record_approves(view)
        or bool(stronger_approvals(view, now, policy, include_expired=include_expired))
    )


def live_since(state: EntitlementState) -> datetime | None:
    if state.grant is not None and state.grant.live_since is not None:
        return state.grant.live_since
    if state.record is not None:
        return state.record.granted_at or state.record.occurred_at
    return None


def record_settles_at(state: EntitlementState, policy: RulePolicy) -> datetime | None:
    """Until when a live grant without a record waits for provisioning's record (hygiene rules only)."""
    seen = state.grant.seen_live_at if state.grant else None
    since = later(live_since(state), seen)
    return since + policy.record_settle_grace if since else None


def removal_applies(view: JoinView, now: datetime) -> tuple[TicketFact, datetime] | None:
    """The removal closure a live entitlement predates (it should have gone), unless it was re-approved since."""
    removal = last_removal(view)
    if removal is None:
        return None
    since = live_since(view.state)
    if since is not None and since > removal[1]:
        return None  # granted again after the closure: that is a new grant, judged on its own approval
    if approvals(view, now, include_expired=True):
        return None  # approved again after the closure
    return removal


def inactive_since(view: JoinView) -> tuple[datetime, str] | None:
    """Since when the principal is inactive (deactivated at the source, or offboarded by a closed ticket)."""
    moments: list[tuple[datetime, str]] = []
    principal = view.principal
    if principal is not None and principal.inactive and principal.status_at is not None and principal.status:
        moments.append((principal.status_at, f"principal {principal.status.value} at the source"))
    for ticket in view.principal_tickets:
        closed = ticket.removal_closed_at
        if closed is not None and ticket.kind.value == "offboarding":
            moments.append((closed, f"offboarded by ticket {ticket.ticket_number}"))
    return min(moments) if moments else None
