"""CLOSED_NOT_REMOVED: a revocation / offboarding / project-end ticket is closed complete, or an access request
was cancelled, and the grant it concerns is still live after the removal grace window.

Principal-level tickets (offboarding) concern every entitlement of the principal. A grant made after the
closure is a new grant (judged by UNTICKETED_GRANT / GRANT_TO_INACTIVE_PRINCIPAL), not this rule.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from reconciliation.rules.approvals import removal_applies
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds, iso

RULE = DriftRule.CLOSED_NOT_REMOVED


def closed_not_removed(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    state = view.state
    if not state.live:
        return clear(RULE)
    removal = removal_applies(view, now)
    if removal is None:
        return clear(RULE)
    ticket, closed_at = removal
    deadline = closed_at + policy.closed_removal_grace
    if now < deadline:
        return clear(RULE, next_check=deadline)
    closed = "cancelled" if ticket.cancelled else "closed"
    return holds(
        RULE,
        Evidence(
            message=f"{ticket.kind.value} ticket {ticket.ticket_number} {closed} {iso(closed_at)}; "
            f"{state.key} is still live",
            tickets=(ticket,),
            facts=(("closed_at", iso(closed_at)), ("grace", iso(policy.closed_removal_grace))),
            include_record=state.record is not None,
        ),
        due_at=deadline,
    )
