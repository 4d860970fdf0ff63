"""RECERT_OVERDUE: recertification of a live entitlement is past due.

Expiry announces it (`recertification_overdue`); the reconciler also notices on its own when the record's due
date (plus the recertification grace) passes with no recertification since. An approved recertification
ticket after the due date clears it even before the record catches up.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from closeloop.contracts.tickets import TicketKind
from reconciliation.rules.approvals import approvals
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds, iso

RULE = DriftRule.RECERT_OVERDUE


def recert_overdue(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    state = view.state
    record = state.record
    if not state.live or record is None:
        return clear(RULE)
    due = record.recertification_due_at
    recertified = [
        t
        for t in approvals(view, now)
        if t.kind == TicketKind.RECERTIFICATION and t.approved_at and (due is None or t.approved_at >= due)
    ]
    if recertified:
        return clear(RULE)
    if record.recert_overdue_at is not None:
        overdue_since = record.recert_overdue_at
    elif due is not None and (record.last_recertified_at is None or record.last_recertified_at < due):
        deadline = due + policy.recert_grace
        if now < deadline:
            return clear(RULE, next_check=deadline)
        overdue_since = deadline
    else:
        return clear(RULE)
    return holds(
        RULE,
        Evidence(
            message=f"recertification of {state.key} was due {iso(due)} "
            f"(last recertified {iso(record.last_recertified_at) or 'never'})",
            facts=(("due_at", iso(due)), ("overdue_since", iso(overdue_since))),
            include_record=True,
        ),
        due_at=overdue_since,
    )
