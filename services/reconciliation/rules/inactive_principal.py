"""GRANT_TO_INACTIVE_PRINCIPAL: a grant went to an identity that is deactivated, suspended or deleted at the
source, or offboarded by a closed offboarding ticket, and is still live.

Only grants made after the identity became inactive count: grants it held before are the offboarding's
business (CLOSED_NOT_REMOVED). A grant known only from a snapshot listing has no grant time, so it cannot be
shown to postdate the deactivation and is left alone.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from reconciliation.rules.approvals import inactive_since
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds, iso

RULE = DriftRule.GRANT_TO_INACTIVE_PRINCIPAL


def granted_while_inactive(view: JoinView) -> tuple[datetime, datetime, str] | None:
    """(granted at, inactive since, why) when the live grant was made while the identity was inactive."""
    grant = view.state.grant
    if grant is None or not grant.live or grant.live_via_snapshot or grant.live_since is None:
        return None
    inactive = inactive_since(view)
    if inactive is None or grant.live_since < inactive[0]:
        return None
    return grant.live_since, inactive[0], inactive[1]


def grant_to_inactive_principal(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    inactive = granted_while_inactive(view)
    if inactive is None:
        return clear(RULE)
    granted_at, since, why = inactive
    return holds(
        RULE,
        Evidence(
            message=f"{view.state.key} granted {iso(granted_at)}, after the identity became inactive ({why})",
            tickets=tuple(t for t in view.principal_tickets if t.kind.value == "offboarding"),
            facts=(("inactive_since", iso(since)), ("inactive_because", why)),
            include_principal_status=view.principal is not None and view.principal.inactive,
        ),
    )
