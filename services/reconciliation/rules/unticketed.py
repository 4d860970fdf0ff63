"""UNTICKETED_GRANT: a live grant has no approved, unexpired ticket and no explicit exception.

A manual grant may precede its approval by the approval grace window. A grant first seen in a connector
snapshot gets no grace (it was already there). More specific findings take precedence for the same grant:
an approval at a lower privilege (SCOPE_EXCEEDS_APPROVAL), an automation actor (UNREVIEWED_AUTOMATED_CHANGE),
a closed removal ticket the grant predates (CLOSED_NOT_REMOVED), a grant to an inactive identity
(GRANT_TO_INACTIVE_PRINCIPAL), and an approval that merely expired (EXPIRED_STILL_LIVE / EXCEPTION_EXPIRED).
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from reconciliation.rules.approvals import covered, live_since, removal_applies, weaker_approvals
from reconciliation.rules.automation import automated_change
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds, iso
from reconciliation.rules.inactive_principal import granted_while_inactive

RULE = DriftRule.UNTICKETED_GRANT


def unticketed_grant(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    state = view.state
    if not state.live:
        return clear(RULE)
    if covered(view, now, policy, include_expired=True):
        return clear(RULE)
    if weaker_approvals(view, now, policy) or automated_change(view) is not None:
        return clear(RULE)
    if removal_applies(view, now) is not None or granted_while_inactive(view) is not None:
        return clear(RULE)
    since = live_since(state)
    grant = state.grant
    snapshot_only = grant is not None and grant.live_via_snapshot
    deadline = since if since is None or snapshot_only else since + policy.grant_before_approval_grace
    if deadline is not None and now < deadline:
        return clear(RULE, next_check=deadline)
    refused = tuple(t for t in state.tickets if t.cancelled)
    how = "listed by a snapshot" if snapshot_only else "granted"
    return holds(
        RULE,
        Evidence(
            message=f"{state.key} is live ({how} {iso(since)}) with no approved ticket",
            tickets=refused,
            absent=("no approved, unexpired ticket or exception names this entitlement",),
            facts=(("live_since", iso(since)),),
            include_record=state.record is not None,
        ),
        due_at=deadline,
    )
