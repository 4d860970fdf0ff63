"""SCOPE_EXCEEDS_APPROVAL: the granted privilege is broader than the approved one — an approval exists for the
same principal and resource, but only at a weaker privilege in the configured privilege order.

Like an unticketed grant, the broader grant gets the approval grace window (its own ticket may follow).
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from reconciliation.rules.approvals import covered, live_since, weaker_approvals
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds

RULE = DriftRule.SCOPE_EXCEEDS_APPROVAL


def scope_exceeds_approval(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    state = view.state
    if not state.live or covered(view, now, policy, include_expired=True):
        return clear(RULE)
    weaker = weaker_approvals(view, now, policy)
    if not weaker:
        return clear(RULE)
    since = live_since(state)
    grant = state.grant
    deadline = since
    if since is not None and not (grant is not None and grant.live_via_snapshot):
        deadline = since + policy.grant_before_approval_grace
        if now < deadline:
            return clear(RULE, next_check=deadline)
    approved = sorted({t.privilege for t in weaker if t.privilege})
    return holds(
        RULE,
        Evidence(
            message=f"{state.principal} holds {state.privilege} on {state.resource}; approved: {', '.join(approved)}",
            tickets=tuple(weaker),
            facts=(("granted_privilege", state.privilege), ("approved_privileges", ",".join(approved))),
        ),
        due_at=deadline,
    )
