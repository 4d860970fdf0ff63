"""UNRESOLVED_REFERENCE and AMBIGUOUS_REFERENCE: a ticket whose names the identity graph and the catalog cannot bind.

A ticket naming something not taught yet waits (late binding): a connector event, a snapshot or an operator alias
usually binds it within seconds. Only after `unresolved_reference_window` does the wait become a finding. A name
that matches several resources or identities is a finding at once: closeloop does not guess, and waiting cannot
make an ambiguous name unique.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.alerts import DriftRule
from reconciliation.rules.base import Evidence, JoinView, RulePolicy, RuleResult, clear, holds
from reconciliation.state import PendingTicket


def _open(view: JoinView) -> list[PendingTicket]:
    return [p for p in view.state.pending if not p.fact.cancelled]


def unresolved_reference(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    rule = DriftRule.UNRESOLVED_REFERENCE
    waiting = sorted((p for p in _open(view) if p.unresolved and not p.ambiguous), key=lambda p: p.since)
    if not waiting:
        return clear(rule)
    due = [p for p in waiting if now >= p.since + policy.unresolved_reference_window]
    if not due:
        return clear(rule, next_check=waiting[0].since + policy.unresolved_reference_window)
    names = tuple(dict.fromkeys(n for p in due for n in p.unresolved))
    return holds(
        rule,
        Evidence(
            message=f"ticket {', '.join(p.fact.ticket_number for p in due)} names {'; '.join(names)}, "
            f"which no connector, snapshot or alias has taught closeloop",
            tickets=tuple(p.fact for p in due),
            absent=tuple(f"no identity or resource known as {n}" for n in names),
            facts=(("window", str(int(policy.unresolved_reference_window.total_seconds()))),),
            include_grant=False,
        ),
    )


def ambiguous_reference(view: JoinView, now: datetime, policy: RulePolicy) -> RuleResult:
    rule = DriftRule.AMBIGUOUS_REFERENCE
    unclear = [p for p in _open(view) if p.ambiguous]
    if not unclear:
        return clear(rule)
    names = tuple(dict.fromkeys(n for p in unclear for n in p.ambiguous))
    return holds(
        rule,
        Evidence(
            message=f"ticket {', '.join(p.fact.ticket_number for p in unclear)} names {'; '.join(names)}; "
            "closeloop does not guess",
            tickets=tuple(p.fact for p in unclear),
            facts=tuple(("ambiguous", n) for n in names),
            include_grant=False,
        ),
    )
