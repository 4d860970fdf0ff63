"""NO_OWNER: a live entitlement has no owner, or its owner was offboarded (expiry announces
`owner_offboarded`). Policy decides whether only non-human identities need an owner (the default) or every
entitlement does. An ungoverned human grant (no record, no approval) is left to UNTICKETED_GRANT; an
ungoverned non-human identity is reported here too, because nobody is accountable for a credential or
service account that appeared at the source by itself.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from reconciliation.rules.approvals import approvals, record_settles_at
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds, iso

RULE = DriftRule.NO_OWNER


def no_owner(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    state = view.state
    if not state.live:
        return clear(RULE)
    kind = state.principal_kind
    if policy.owner_required_for != "all" and not kind.is_nhi:
        return clear(RULE)
    record = state.record
    tickets = approvals(view, now, include_expired=True)
    if record is None and not tickets and not kind.is_nhi:
        return clear(RULE)  # an ungoverned person's grant: UNTICKETED_GRANT speaks for it
    if record is None:
        settled = record_settles_at(state, policy)
        if settled is not None and now < settled:
            return clear(RULE, next_check=settled)  # the record usually follows the grant closely
    owner = record.owner if record is not None else next((t.owner for t in tickets if t.owner), None)
    if owner is None:
        return holds(
            RULE,
            Evidence(
                message=f"{kind.value} entitlement {state.key} has no owner",
                tickets=tuple(tickets),
                absent=("no owner on the entitlement record or its approving ticket",),
                facts=(("principal_kind", kind.value),),
                include_record=record is not None,
            ),
        )
    if record is not None and record.owner_offboarded_at is not None:
        return holds(
            RULE,
            Evidence(
                message=f"owner {owner} of {state.key} was offboarded {iso(record.owner_offboarded_at)}",
                facts=(("owner", owner), ("owner_offboarded_at", iso(record.owner_offboarded_at))),
                include_record=True,
            ),
        )
    return clear(RULE)
