"""The drift rules: one pure function per rule code, evaluated together for one entitlement key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from reconciliation.rules.automation import unreviewed_automated_change
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, Trigger
from reconciliation.rules.closed_not_removed import closed_not_removed
from reconciliation.rules.expiry import exception_expired, expired_still_live
from reconciliation.rules.fulfilment import fulfilment_missing
from reconciliation.rules.inactive_principal import grant_to_inactive_principal
from reconciliation.rules.no_expiry import no_expiry
from reconciliation.rules.ownership import no_owner
from reconciliation.rules.recertification import recert_overdue
from reconciliation.rules.references import ambiguous_reference, unresolved_reference
from reconciliation.rules.revoke_unconfirmed import revoke_unconfirmed
from reconciliation.rules.scope import scope_exceeds_approval
from reconciliation.rules.stale_credential import stale_credential
from reconciliation.rules.unticketed import unticketed_grant

Rule = Callable[[JoinView, datetime, RulePolicy], RuleResult]

RULES: dict[DriftRule, Rule] = {
    DriftRule.UNTICKETED_GRANT: unticketed_grant,
    DriftRule.CLOSED_NOT_REMOVED: closed_not_removed,
    DriftRule.EXPIRED_STILL_LIVE: expired_still_live,
    DriftRule.REVOKE_UNCONFIRMED: revoke_unconfirmed,
    DriftRule.SCOPE_EXCEEDS_APPROVAL: scope_exceeds_approval,
    DriftRule.NO_OWNER: no_owner,
    DriftRule.NO_EXPIRY: no_expiry,
    DriftRule.RECERT_OVERDUE: recert_overdue,
    DriftRule.EXCEPTION_EXPIRED: exception_expired,
    DriftRule.GRANT_TO_INACTIVE_PRINCIPAL: grant_to_inactive_principal,
    DriftRule.STALE_CREDENTIAL: stale_credential,
    DriftRule.FULFILMENT_MISSING: fulfilment_missing,
    DriftRule.UNREVIEWED_AUTOMATED_CHANGE: unreviewed_automated_change,
    DriftRule.UNRESOLVED_REFERENCE: unresolved_reference,
    DriftRule.AMBIGUOUS_REFERENCE: ambiguous_reference,
}


def evaluate_all(view: JoinView, now: datetime, policy: RulePolicy) -> list[RuleResult]:
    return [rule(view, now, policy) for rule in RULES.values()]


def next_check(results: list[RuleResult]) -> datetime | None:
    """The earliest moment any rule's verdict could change by the clock alone."""
    moments = [r.next_check for r in results if r.next_check is not None]
    return min(moments) if moments else None


__all__ = ["RULES", "Evidence", "JoinView", "RulePolicy", "RuleResult", "Trigger", "evaluate_all", "next_check"]
