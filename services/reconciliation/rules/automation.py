"""UNREVIEWED_AUTOMATED_CHANGE: an automation or AI agent identity changed identity state (granted or revoked)
with no human-approved ticket behind the change (NIST AI RMF: human oversight of AI actions).

Changes that carry a closeloop provisioning command id were decided upstream (an approved ticket or a policy
trigger) and are reviewed by construction. A ticket may follow the change within the approval grace window.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from closeloop.contracts.entitlements import EntitlementStatus
from closeloop.contracts.grants import GrantAction
from reconciliation.rules.approvals import approvals, stronger_approvals
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds, iso
from reconciliation.state import REMOVAL_KINDS, ActorFact, ChangeFact

RULE = DriftRule.UNREVIEWED_AUTOMATED_CHANGE


def automated_change(view: JoinView) -> tuple[ChangeFact, ActorFact] | None:
    """The latest change and its actor, when an automation made it without a closeloop command."""
    grant = view.state.grant
    change = grant.last_change if grant else None
    if change is None or change.actor is None or not change.actor.automated or change.command_id is not None:
        return None
    return change, change.actor


def _reviewed(view: JoinView, change: ChangeFact, now: datetime, policy: RulePolicy) -> bool:
    if change.action == GrantAction.GRANT:
        human = [t for t in approvals(view, now, include_expired=True) if t.human_approved]
        human += [t for t in stronger_approvals(view, now, policy, include_expired=True) if t.human_approved]
        return bool(human)
    record = view.state.record
    if record is not None and record.status in (
        EntitlementStatus.REVOKING,
        EntitlementStatus.REVOKED,
        EntitlementStatus.EXPIRED,
    ):
        return True  # closeloop itself decided the removal
    removal_tickets = [t for t in (*view.state.tickets, *view.principal_tickets) if t.kind in REMOVAL_KINDS]
    return any(t.approved_at is not None or t.closed_at is not None for t in removal_tickets)


def unreviewed_automated_change(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    found = automated_change(view)
    if found is None:
        return clear(RULE)
    change, actor = found
    live = view.state.live
    if (change.action == GrantAction.GRANT) != live:
        return clear(RULE)  # already reverted
    if _reviewed(view, change, now, policy):
        return clear(RULE)
    deadline = change.occurred_at + policy.grant_before_approval_grace
    if now < deadline:
        return clear(RULE, next_check=deadline)
    verb = "granted" if change.action == GrantAction.GRANT else "revoked"
    return holds(
        RULE,
        Evidence(
            message=f"{actor.name or actor.id} ({actor.kind.value}) {verb} {view.state.key} "
            f"via {change.vendor_event_type} with no human-approved ticket",
            absent=("no human-approved ticket covers this change",),
            facts=(
                ("change_event_id", change.event_id),
                ("action", change.action.value),
                ("actor", actor.id),
                ("changed_at", iso(change.occurred_at)),
            ),
            actor=actor,
        ),
    )
