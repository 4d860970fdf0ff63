"""REVOKE_UNCONFIRMED: a revoke command went out and the source has not confirmed it within the SLA.

Expiry announces it (`revoke_unconfirmed`); the reconciler also notices on its own when the record's
`revoke_confirm_by` passes while the grant is still live.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from closeloop.contracts.entitlements import EntitlementStatus
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds, iso

RULE = DriftRule.REVOKE_UNCONFIRMED


def revoke_unconfirmed(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    state = view.state
    record = state.record
    if not state.live or record is None:
        return clear(RULE)
    if record.revoke_unconfirmed_at is not None:
        since = record.revoke_unconfirmed_at
    elif record.status == EntitlementStatus.REVOKING and record.revoke_confirm_by is not None:
        if now < record.revoke_confirm_by:
            return clear(RULE, next_check=record.revoke_confirm_by)
        since = record.revoke_confirm_by
    else:
        return clear(RULE)
    return holds(
        RULE,
        Evidence(
            message=f"revoke of {state.key} requested {iso(record.revoke_requested_at)} is not confirmed "
            f"(due {iso(record.revoke_confirm_by)}); the grant is still live",
            facts=(("revoke_requested_at", iso(record.revoke_requested_at)), ("unconfirmed_since", iso(since))),
            include_record=True,
        ),
        due_at=since,
    )
