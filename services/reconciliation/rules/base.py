"""What every rule gets (the join view, the clock, the policy) and what it returns (a result with evidence).

A rule is a pure function `(view, now, policy) -> RuleResult`: no I/O, no faust, no wall clock. The result says
whether the condition holds now, with the evidence a SOC analyst needs, and the next moment at which the
verdict could change by the clock alone (a grace window ending, an expiry date), so a timer can re-evaluate
the key exactly then.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase, translate
from functools import lru_cache
from typing import Any

from closeloop.contracts.alerts import DriftRule
from reconciliation.state import ActorFact, EntitlementState, PrincipalState, TicketFact


@lru_cache(maxsize=32)
def _patterns(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled regular expression for a tuple of fnmatch patterns (policy is checked on every event)."""
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns)) if patterns else None


@dataclass(frozen=True)
class RulePolicy:
    """The rule knobs, from settings (see ReconciliationSettings for each one's meaning)."""

    grant_before_approval_grace: timedelta = timedelta(minutes=10)
    closed_removal_grace: timedelta = timedelta(minutes=15)
    fulfilment_grace: timedelta = timedelta(minutes=30)
    record_settle_grace: timedelta = timedelta(minutes=5)
    expiry_grace: timedelta = timedelta(minutes=5)
    recert_grace: timedelta = timedelta(0)
    credential_max_age: timedelta = timedelta(days=90)
    privilege_order: tuple[tuple[str, ...], ...] = (("read", "write", "admin"), ("member", "owner"))
    expiry_required_resources: tuple[str, ...] = ()
    expiry_required_privileges: tuple[str, ...] = ()
    expiry_required_for_nhi: bool = False
    owner_required_for: str = "nhi"

    @classmethod
    def from_settings(cls, settings: Any) -> RulePolicy:
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})

    def compare(self, a: str, b: str) -> int | None:
        """<0 if privilege a is weaker than b, 0 if equal, >0 if stronger; None when no order holds both."""
        if a == b:
            return 0
        for chain in self.privilege_order:
            if a in chain and b in chain:
                return chain.index(a) - chain.index(b)
        return None

    def covers(self, approved: str, granted: str) -> bool:
        """An approval of `approved` covers a grant of `granted` (same or stronger privilege)."""
        order = self.compare(approved, granted)
        return order is not None and order >= 0

    def requires_expiry(self, resource: str, privilege: str, nhi: bool) -> str | None:
        """Why policy requires an expiry for this entitlement, or None."""
        matcher = _patterns(self.expiry_required_resources)
        if matcher is not None and matcher.match(resource):
            pattern = next(p for p in self.expiry_required_resources if fnmatchcase(resource, p))
            return f"resource matches {pattern}"
        if privilege in self.expiry_required_privileges:
            return f"privilege {privilege} is a standing privilege"
        if nhi and self.expiry_required_for_nhi:
            return "non-human identities need an expiry"
        return None


@dataclass(frozen=True)
class Trigger:
    """The input that caused this evaluation (an event, a snapshot end, or a deadline tick)."""

    kind: str
    event_id: str | None = None
    event_type: str | None = None
    occurred_at: datetime | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class JoinView:
    """Everything the join knows around one entitlement key."""

    state: EntitlementState
    principal: PrincipalState | None = None
    # Other entitlements of the same principal on the same resource (other privileges).
    siblings: tuple[EntitlementState, ...] = ()
    # Principal-level tickets naming the person by a bare id (email, login).
    person_tickets: tuple[TicketFact, ...] = ()
    trigger: Trigger | None = None
    # Join queries computed once per evaluation (thirteen rules ask the same questions).
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False, hash=False)

    def remember(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    @property
    def principal_tickets(self) -> tuple[TicketFact, ...]:
        own = self.principal.tickets if self.principal else ()
        return (*own, *self.person_tickets)


@dataclass(frozen=True)
class Evidence:
    """Why a rule holds: the facts a finding carries (the grant and ticket themselves come from the view)."""

    message: str
    tickets: tuple[TicketFact, ...] = ()
    # Statements of absence ("no approved ticket names this entitlement").
    absent: tuple[str, ...] = ()
    # Rule-specific facts, stable while the condition holds (they make the evidence fingerprint).
    facts: tuple[tuple[str, str], ...] = ()
    include_grant: bool = True
    include_record: bool = False
    include_principal_status: bool = False
    actor: ActorFact | None = None

    def fingerprint_parts(self) -> tuple[str, ...]:
        return (
            *(f"ticket:{t.ticket_id}:{t.transition.value}" for t in sorted(self.tickets, key=lambda t: t.ticket_id)),
            *(f"absent:{a}" for a in self.absent),
            *(f"{k}={v}" for k, v in self.facts),
        )


@dataclass(frozen=True)
class RuleResult:
    rule: DriftRule
    evidence: Evidence | None = None
    next_check: datetime | None = None
    notes: dict[str, str] = field(default_factory=dict)
    # For a finding about something missing: the event time up to which the other inputs must be complete
    # before the finding can be decided (usually the end of its grace window). See watermarks.py.
    due_at: datetime | None = None

    @property
    def holds(self) -> bool:
        return self.evidence is not None


def holds(
    rule: DriftRule, evidence: Evidence, next_check: datetime | None = None, *, due_at: datetime | None = None
) -> RuleResult:
    return RuleResult(rule=rule, evidence=evidence, next_check=next_check, due_at=due_at)


def clear(rule: DriftRule, next_check: datetime | None = None) -> RuleResult:
    return RuleResult(rule=rule, next_check=next_check)


def iso(value: datetime | timedelta | None) -> str:
    if value is None:
        return ""
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds())}s"
    return value.isoformat()


def later(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def earlier(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None
