"""NO_EXPIRY: a live, governed entitlement has no expiry where policy requires one (standing privilege).

Policy: resources matching configured patterns, configured privileges (admin, owner), and optionally every
non-human identity's entitlement must end. An expiry from the record, an exception window, the approving
ticket's duration, or the source's own end date all count.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from reconciliation.rules.approvals import approvals, record_settles_at
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds

RULE = DriftRule.NO_EXPIRY


def no_expiry(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    state = view.state
    if not state.live:
        return clear(RULE)
    record = state.record
    tickets = approvals(view, now, include_expired=True)
    if record is None and not tickets:
        return clear(RULE)  # ungoverned: UNTICKETED_GRANT speaks for it
    if record is None:
        settled = record_settles_at(state, policy)
        if settled is not None and now < settled:
            return clear(RULE, next_check=settled)  # the record usually follows the grant closely
    why = policy.requires_expiry(state.resource, state.privilege, state.principal_kind.is_nhi)
    if why is None:
        return clear(RULE)
    ends = [
        record.expires_at if record else None,
        record.exception_window_end if record else None,
        state.grant.source_expires_at if state.grant else None,
    ]
    if record is None:
        ends += [t.valid_until for t in tickets]
    if any(end is not None for end in ends):
        return clear(RULE)
    return holds(
        RULE,
        Evidence(
            message=f"{state.key} is standing access with no expiry ({why})",
            tickets=tuple(tickets),
            absent=("no expiry on the record, the approving ticket or the source",),
            facts=(("policy", why),),
            include_record=record is not None,
        ),
    )
