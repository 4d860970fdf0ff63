"""FULFILMENT_MISSING: a ticket is marked fulfilled but no matching grant appeared at the source within the
fulfilment grace window.

A grant observed since the approval (even one removed again later) counts as having appeared; so does access
that a removal ticket ended meanwhile, or an approval that has since expired.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from reconciliation.rules.approvals import approvals, last_removal
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds, iso

RULE = DriftRule.FULFILMENT_MISSING


def fulfilment_missing(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    state = view.state
    fulfilled = [(t.fulfilled_at, t) for t in approvals(view, now) if t.fulfilled_at is not None]
    if not fulfilled or state.live:
        return clear(RULE)
    fulfilled_at, ticket = max(fulfilled, key=lambda pair: (pair[0], pair[1].ticket_id))
    grant = state.grant
    approved_at = ticket.approved_at or fulfilled_at
    appeared_after = approved_at - policy.grant_before_approval_grace
    if grant is not None and (grant.live_since or grant.last_event_at) >= appeared_after:
        return clear(RULE)
    removal = last_removal(view)
    if removal is not None and removal[1] >= fulfilled_at:
        return clear(RULE)
    deadline = fulfilled_at + policy.fulfilment_grace
    if now < deadline:
        return clear(RULE, next_check=deadline)
    return holds(
        RULE,
        Evidence(
            message=f"ticket {ticket.ticket_number} was fulfilled {iso(fulfilled_at)} but {state.key} "
            "never appeared at the source",
            tickets=(ticket,),
            absent=("no grant observed at the source since the approval",),
            facts=(("fulfilled_at", iso(fulfilled_at)),),
            include_grant=False,
            include_record=state.record is not None,
        ),
        due_at=deadline,
    )
