"""Drift rule codes. The alert document itself (an OCSF Detection Finding) is built by reconciliation.

The codes are stable: alerts, tests and dashboards use them.
"""

from __future__ import annotations

from enum import StrEnum


class DriftRule(StrEnum):
    UNTICKETED_GRANT = "UNTICKETED_GRANT"
    CLOSED_NOT_REMOVED = "CLOSED_NOT_REMOVED"
    EXPIRED_STILL_LIVE = "EXPIRED_STILL_LIVE"
    REVOKE_UNCONFIRMED = "REVOKE_UNCONFIRMED"
    SCOPE_EXCEEDS_APPROVAL = "SCOPE_EXCEEDS_APPROVAL"
    NO_OWNER = "NO_OWNER"
    NO_EXPIRY = "NO_EXPIRY"
    RECERT_OVERDUE = "RECERT_OVERDUE"
    EXCEPTION_EXPIRED = "EXCEPTION_EXPIRED"
    GRANT_TO_INACTIVE_PRINCIPAL = "GRANT_TO_INACTIVE_PRINCIPAL"
    STALE_CREDENTIAL = "STALE_CREDENTIAL"
    FULFILMENT_MISSING = "FULFILMENT_MISSING"
    UNREVIEWED_AUTOMATED_CHANGE = "UNREVIEWED_AUTOMATED_CHANGE"


class Severity(StrEnum):
    """OCSF severity names; `SEVERITY_ID` maps them to OCSF `severity_id`."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_ID: dict[Severity, int] = {Severity.LOW: 2, Severity.MEDIUM: 3, Severity.HIGH: 4, Severity.CRITICAL: 5}

DEFAULT_SEVERITY: dict[DriftRule, Severity] = {
    DriftRule.UNTICKETED_GRANT: Severity.HIGH,
    DriftRule.CLOSED_NOT_REMOVED: Severity.HIGH,
    DriftRule.EXPIRED_STILL_LIVE: Severity.HIGH,
    DriftRule.REVOKE_UNCONFIRMED: Severity.HIGH,
    DriftRule.SCOPE_EXCEEDS_APPROVAL: Severity.HIGH,
    DriftRule.NO_OWNER: Severity.MEDIUM,
    DriftRule.NO_EXPIRY: Severity.MEDIUM,
    DriftRule.RECERT_OVERDUE: Severity.MEDIUM,
    DriftRule.EXCEPTION_EXPIRED: Severity.CRITICAL,
    DriftRule.GRANT_TO_INACTIVE_PRINCIPAL: Severity.HIGH,
    DriftRule.STALE_CREDENTIAL: Severity.MEDIUM,
    DriftRule.FULFILMENT_MISSING: Severity.LOW,
    DriftRule.UNREVIEWED_AUTOMATED_CHANGE: Severity.HIGH,
}
