"""Alert lifecycle (pure): one finding per (entitlement key, rule), opened, updated, closed.

- The condition starts to hold: Create (status New); after an earlier Close it reopens as Update (status New).
- It still holds, with different evidence (another ticket, a new grant event, new facts): Update.
- It no longer holds: Close (status Resolved).
- Nothing changed: nothing is emitted.

Every emitted record gets the next revision of the finding and a deterministic event id per
(finding uid, activity, revision): replaying the same inputs after a restart produces the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from closeloop.contracts.alerts import AlertActivity, AlertStatus, DriftRule, alert_event_id, finding_uid
from reconciliation.rules.base import Evidence, JoinView, RuleResult
from reconciliation.state import AlertState


@dataclass(frozen=True)
class AlertChange:
    """One alert record to emit."""

    key: str
    rule: DriftRule
    uid: str
    activity: AlertActivity
    status: AlertStatus
    revision: int
    event_id: str
    at: datetime
    first_opened_at: datetime
    opened_at: datetime
    closed_at: datetime | None
    reopened: bool
    evidence: Evidence | None


def fingerprint(view: JoinView, evidence: Evidence) -> str:
    """Identity of the evidence: changes when new evidence arrives, not when the same facts are seen again."""
    parts = list(evidence.fingerprint_parts())
    grant = view.state.grant
    if evidence.include_grant and grant is not None and grant.live_event_id:
        parts.append(f"grant:{grant.live_event_id}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def decide(
    prev: AlertState | None, result: RuleResult, view: JoinView, now: datetime
) -> tuple[AlertState | None, AlertChange | None]:
    """The finding's next state and the record to emit (None, None when nothing changes)."""
    key = view.state.key
    evidence = result.evidence
    if evidence is None:
        if prev is None or not prev.open:
            return None, None
        revision = prev.revision + 1
        uid = prev.uid
        event_id = alert_event_id(uid, AlertActivity.CLOSE, revision)
        closed = prev.model_copy(
            update={"open": False, "revision": revision, "updated_at": now, "closed_at": now, "last_event_id": event_id}
        )
        return closed, AlertChange(
            key=key,
            rule=result.rule,
            uid=uid,
            activity=AlertActivity.CLOSE,
            status=AlertStatus.RESOLVED,
            revision=revision,
            event_id=event_id,
            at=now,
            first_opened_at=prev.first_opened_at,
            opened_at=prev.opened_at,
            closed_at=now,
            reopened=False,
            evidence=None,
        )

    print_ = fingerprint(view, evidence)
    if prev is not None and prev.open and prev.fingerprint == print_:
        return None, None
    uid = prev.uid if prev is not None else finding_uid(key, result.rule)
    revision = (prev.revision if prev is not None else 0) + 1
    if prev is None:
        activity, opened_at, first_opened_at, reopened = AlertActivity.CREATE, now, now, False
    elif not prev.open:
        activity, opened_at, first_opened_at, reopened = AlertActivity.UPDATE, now, prev.first_opened_at, True
    else:
        activity, opened_at, first_opened_at, reopened = (
            AlertActivity.UPDATE,
            prev.opened_at,
            prev.first_opened_at,
            False,
        )
    event_id = alert_event_id(uid, activity, revision)
    state = AlertState(
        uid=uid,
        rule=result.rule,
        open=True,
        revision=revision,
        fingerprint=print_,
        first_opened_at=first_opened_at,
        opened_at=opened_at,
        updated_at=now,
        closed_at=None,
        last_event_id=event_id,
    )
    return state, AlertChange(
        key=key,
        rule=result.rule,
        uid=uid,
        activity=activity,
        status=AlertStatus.NEW,
        revision=revision,
        event_id=event_id,
        at=now,
        first_opened_at=first_opened_at,
        opened_at=opened_at,
        closed_at=None,
        reopened=reopened,
        evidence=evidence,
    )
