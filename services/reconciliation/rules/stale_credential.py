"""STALE_CREDENTIAL: a live non-human credential (access key, token, secret) is older than the rotation policy,
counted from its last rotation, else its creation."""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds, iso

RULE = DriftRule.STALE_CREDENTIAL


def stale_credential(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    state = view.state
    grant = state.grant
    if not state.live or grant is None or grant.credential is None:
        return clear(RULE)
    credential = grant.credential
    since = credential.age_from
    if credential.status != "active" or since is None:
        return clear(RULE)
    deadline = since + policy.credential_max_age
    if now < deadline:
        return clear(RULE, next_check=deadline)
    days = (now - since).days
    rotated = "rotated" if credential.rotated_at else "created"
    return holds(
        RULE,
        Evidence(
            message=f"{credential.credential_type} {credential.credential_id} was last {rotated} {iso(since)} "
            f"({days} days; policy {policy.credential_max_age.days} days)",
            facts=(
                ("credential_id", credential.credential_id),
                ("credential_type", credential.credential_type),
                ("age_from", iso(since)),
                ("max_age", iso(policy.credential_max_age)),
            ),
        ),
    )
