"""Which inputs fire a revocation trigger or record a recertification decision, and for whom.

Pure: an input event goes in, a trigger (or nothing) comes out. The handlers apply triggers to the
entitlement record; the Kafka entry point only decodes and hands over.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from closeloop.contracts.entitlements import TicketRef
from closeloop.contracts.grants import PrincipalStatus, PrincipalStatusChanged
from closeloop.contracts.identity import EntitlementKey, split_ref
from closeloop.contracts.ticket_interpretation import TicketInterpretation, interpret
from closeloop.contracts.tickets import ApprovalDecision, TicketEvent, TicketKind, TicketTransition
from expiry.recertification import Decision


@dataclass(frozen=True)
class PrincipalMatch:
    """Ways the same person or identity may be named: canonical principals and bare names (email, login).

    A canonical principal matches entitlements held by exactly that principal. A bare name matches any
    principal whose id part is that name (an offboarding ticket naming `alice@example.com` ends her
    access in every system), and any owner field written either way.
    """

    principals: frozenset[str]
    names: frozenset[str]

    @classmethod
    def of(cls, *identifiers: str) -> PrincipalMatch:
        principals: set[str] = set()
        names: set[str] = set()
        for raw in identifiers:
            value = raw.strip()
            if not value:
                continue
            try:
                system, ref_type, ref_id = split_ref(value)
            except ValueError:
                names.add(value.lower())
                continue
            principals.add(f"{system.lower()}:{ref_type.lower()}:{ref_id}")
            names.add(ref_id.lower())
        return cls(frozenset(principals), frozenset(names))

    def matches_principal(self, principal: str) -> bool:
        if principal in self.principals:
            return True
        try:
            return split_ref(principal)[2].lower() in self.names
        except ValueError:
            return False

    @classmethod
    def of_beneficiary(cls, meaning: TicketInterpretation) -> PrincipalMatch:
        return cls(meaning.beneficiary.principals, meaning.beneficiary.names)

    def matches_owner(self, owner: str | None) -> bool:
        if not owner:
            return False
        return owner.strip() in self.principals or self.matches_principal(owner) or owner.strip().lower() in self.names


@dataclass(frozen=True)
class OffboardPrincipal:
    who: PrincipalMatch
    subject: str
    occurred_at: datetime
    source_event_id: str
    correlation_id: str
    ticket: TicketRef | None = None


@dataclass(frozen=True)
class EndProject:
    project: str
    occurred_at: datetime
    source_event_id: str
    correlation_id: str
    ticket: TicketRef | None = None


@dataclass(frozen=True)
class RecertificationDecision:
    key: EntitlementKey
    decision: Decision
    reviewer: str
    decided_at: datetime
    source_event_id: str
    correlation_id: str
    ticket: TicketRef | None = None
    note: str | None = field(default=None)
    # What makes a repeat of this decision a duplicate: the ticket's approval (or rejection), which several
    # transitions may carry; the input event for decisions that come from elsewhere.
    decision_id: str | None = None

    @property
    def claim_id(self) -> str:
        return self.decision_id or self.source_event_id


Trigger = OffboardPrincipal | EndProject | RecertificationDecision


@dataclass(frozen=True)
class Ignored:
    """A valid input that carries nothing for expiry; `why` is a metric label."""

    why: str


@dataclass(frozen=True)
class Unusable:
    """An approved ticket that can never be applied (it names nobody, no project, no entitlement): it goes
    to the dead-letter topic with `why`, where it can be replayed once fixed at the source."""

    why: str


def from_principal_status(
    event: PrincipalStatusChanged, offboarded: Collection[PrincipalStatus]
) -> OffboardPrincipal | Ignored:
    if event.status not in offboarded:
        return Ignored(f"status_{event.status.value}")
    return OffboardPrincipal(
        who=PrincipalMatch.of(event.principal, *event.principal_aliases),
        subject=event.principal,
        occurred_at=event.occurred_at,
        source_event_id=event.event_id,
        correlation_id=event.correlation_id,
    )


def from_ticket(event: TicketEvent) -> Trigger | Ignored | Unusable:
    """A fan-out trigger fires once the ticket is approved: on whichever transition first proves it."""
    meaning = interpret(event)
    if meaning.kind is TicketKind.OFFBOARDING:
        return _offboarding(event, meaning)
    if meaning.kind is TicketKind.PROJECT_END:
        return _project_end(event, meaning)
    if meaning.kind is TicketKind.RECERTIFICATION:
        return _recertification(event, meaning)
    return Ignored(f"kind_{event.kind.value}")


def _offboarding(event: TicketEvent, meaning: TicketInterpretation) -> OffboardPrincipal | Ignored | Unusable:
    if not meaning.approved:
        return Ignored(f"transition_{event.transition.value}")
    if not meaning.beneficiary.named:
        return Unusable("offboarding ticket names nobody (requested_for is empty)")
    subject = meaning.entitlement.principal if meaning.entitlement is not None else meaning.beneficiary.reference
    return OffboardPrincipal(
        who=PrincipalMatch.of_beneficiary(meaning),
        subject=subject or "",
        occurred_at=event.occurred_at,
        source_event_id=event.event_id,
        correlation_id=event.correlation_id,
        ticket=meaning.ticket,
    )


def _project_end(event: TicketEvent, meaning: TicketInterpretation) -> EndProject | Ignored | Unusable:
    if not meaning.approved:
        return Ignored(f"transition_{event.transition.value}")
    if meaning.project is None:
        return Unusable("project-end ticket names no project")
    return EndProject(
        project=meaning.project,
        occurred_at=event.occurred_at,
        source_event_id=event.event_id,
        correlation_id=event.correlation_id,
        ticket=meaning.ticket,
    )


def _recertification(event: TicketEvent, meaning: TicketInterpretation) -> RecertificationDecision | Ignored | Unusable:
    """A recertification ticket approved means certify; rejected means revoke."""
    if meaning.approved:
        decision, wanted = Decision.CERTIFY, ApprovalDecision.APPROVED
    elif event.transition is TicketTransition.REJECTED:
        decision, wanted = Decision.REVOKE, ApprovalDecision.REJECTED
    else:
        return Ignored(f"transition_{event.transition.value}")
    if event.entitlement is None:
        return Unusable("recertification ticket names no entitlement")
    deciders = [a for a in event.approvers if a.decision is wanted]
    reviewer = deciders[-1].approver if deciders else event.actor
    if not reviewer:
        return Unusable("recertification decision names no reviewer")
    decided_at = deciders[-1].decided_at if deciders and deciders[-1].decided_at else event.occurred_at
    return RecertificationDecision(
        key=event.entitlement,
        decision=decision,
        reviewer=reviewer,
        decided_at=decided_at,
        source_event_id=event.event_id,
        correlation_id=event.correlation_id,
        ticket=meaning.ticket,
        note=event.justification,
        decision_id=f"{meaning.approval_key}:{event.entitlement}:{decision.value}",
    )
