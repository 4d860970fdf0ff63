"""What one ticket transition means, decided once for every service (pure).

Provisioning, expiry and the reconciler all ask the same questions of a ticket event: is it approved (or
withdrawn), what does it approve, for whom, until when, and what kind of action it is. They answer them here.

Approval: ITSM tools coalesce updates (a ServiceNow business rule fires once for several field changes) and
deliveries get lost, so an `approved` transition may never be seen on its own. Any transition that can only
happen after approval (in fulfilment, fulfilled, closed complete) therefore proves the approval; consumers
count it once per ticket, whichever delivery carried it first.

For whom: the beneficiary reference as the ticket writes it, plus its canonical principal when the ticket
names one. Resolving a reference to the accounts it stands for elsewhere is not done here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from closeloop.contracts.entitlements import TicketRef
from closeloop.contracts.identity import KEY_SEPARATOR, EntitlementKey, canonical_ref, split_ref
from closeloop.contracts.tickets import ApprovalDecision, RequestedAccess, TicketEvent, TicketKind, TicketTransition


class TicketAction(StrEnum):
    """What acting on the ticket does."""

    GRANT = "grant"  # create (or renew) the one entitlement it names
    REVOKE = "revoke"  # end the one entitlement it names
    FAN_OUT = "fan_out"  # offboarding, project end, recertification: every entitlement the trigger matches
    EXCEPTION = "exception"  # an exception / break-glass grant, bound to a window


class Standing(StrEnum):
    """Where the ticket's approval stands as of this transition."""

    PENDING = "pending"
    APPROVED = "approved"
    WITHDRAWN = "withdrawn"  # rejected or cancelled


ACTIONS = {
    TicketKind.ACCESS_REQUEST: TicketAction.GRANT,
    TicketKind.EXCEPTION: TicketAction.EXCEPTION,
    TicketKind.REVOCATION_REQUEST: TicketAction.REVOKE,
    TicketKind.OFFBOARDING: TicketAction.FAN_OUT,
    TicketKind.PROJECT_END: TicketAction.FAN_OUT,
    TicketKind.RECERTIFICATION: TicketAction.FAN_OUT,
}
# Transitions that can only happen once the ticket was approved.
APPROVED_TRANSITIONS = frozenset(
    {
        TicketTransition.APPROVED,
        TicketTransition.IN_FULFILMENT,
        TicketTransition.FULFILLED,
        TicketTransition.CLOSED_COMPLETE,
    }
)
WITHDRAWN_TRANSITIONS = frozenset({TicketTransition.REJECTED, TicketTransition.CLOSED_CANCELLED})


def canonical(value: str) -> str | None:
    """`value` as a canonical `<system>:<type>:<id>` reference, or None when it is not one."""
    try:
        return canonical_ref(*split_ref(value.strip()))
    except ValueError:
        return None


@dataclass(frozen=True)
class Beneficiary:
    """For whom: the reference as written, the canonical principal it names, and the bare ids it stands for.

    A user principal also contributes its id (the email or login) as a name: a person named
    `okta:user:alice@example.com` is `alice@example.com` in every system.
    """

    reference: str | None
    principal: str | None
    principals: frozenset[str]
    names: frozenset[str]
    # A bare person id (email, login) on a principal-level ticket (no access, no entitlement) that names
    # no canonical principal: it is about that person wherever they have accounts.
    person: str | None = None

    @property
    def named(self) -> bool:
        return bool(self.principals or self.names)


@dataclass(frozen=True)
class Term:
    """Until when: a requested duration, a requested end date, or an exception window."""

    duration: timedelta | None
    until: datetime | None
    window_start: datetime | None
    window_end: datetime | None


@dataclass(frozen=True)
class TicketInterpretation:
    """Approved or not (`standing`), what (`access` as the ticket states it, `entitlement` when it names one),
    for whom (`beneficiary`), until when (`term`), and what kind of action (`action`)."""

    ticket: TicketRef
    kind: TicketKind
    action: TicketAction
    transition: TicketTransition
    standing: Standing
    # Earliest moment this delivery proves an approval happened (an approving transition, or an approver's
    # dated decision), even when the ticket as a whole is not approved yet; None: it proves none.
    approval_seen_at: datetime | None
    # An approver (or an explicit `approved` transition) rather than a workflow stage vouches for it.
    human_approved: bool
    approvers: tuple[str, ...]
    access: RequestedAccess | None
    entitlement: EntitlementKey | None
    beneficiary: Beneficiary
    term: Term
    project: str | None

    @property
    def approved(self) -> bool:
        return self.standing is Standing.APPROVED

    @property
    def withdrawn(self) -> bool:
        return self.standing is Standing.WITHDRAWN

    @property
    def approval_key(self) -> str:
        """One id per ticket approval, so that the first delivery proving it is the only one acted on."""
        return f"approval:{self.ticket.system}:{self.ticket.ticket_id}"

    def entitlement_for(self, principal: str) -> EntitlementKey | None:
        """The entitlement the ticket names, held by `principal` (e.g. the beneficiary after alias resolution)."""
        if self.entitlement is not None:
            return _key(principal, self.entitlement.resource, self.entitlement.privilege)
        if self.access is not None:
            return _key(principal, self.access.resource, self.access.privilege)
        return None


def interpret(ticket: TicketEvent) -> TicketInterpretation:
    beneficiary = _beneficiary(ticket)
    approved_by = [a for a in ticket.approvers if a.decision is ApprovalDecision.APPROVED]
    seen = [ticket.occurred_at] if ticket.transition in APPROVED_TRANSITIONS else []
    seen += [a.decided_at or ticket.occurred_at for a in approved_by]
    if ticket.transition in WITHDRAWN_TRANSITIONS:
        standing = Standing.WITHDRAWN
    elif ticket.transition in APPROVED_TRANSITIONS:
        standing = Standing.APPROVED
    else:
        standing = Standing.PENDING
    entitlement = ticket.entitlement
    if entitlement is None and beneficiary.principal is not None and ticket.access is not None:
        entitlement = _key(beneficiary.principal, ticket.access.resource, ticket.access.privilege)
    return TicketInterpretation(
        ticket=ticket_ref(ticket),
        kind=ticket.kind,
        action=ACTIONS[ticket.kind],
        transition=ticket.transition,
        standing=standing,
        approval_seen_at=min(seen) if seen else None,
        human_approved=bool(approved_by) or ticket.transition is TicketTransition.APPROVED,
        approvers=_approvers(ticket),
        access=ticket.access,
        entitlement=entitlement,
        beneficiary=beneficiary,
        term=Term(ticket.requested_duration, ticket.requested_until, ticket.window_start, ticket.window_end),
        project=ticket.project.strip() if ticket.project and ticket.project.strip() else None,
    )


def ticket_ref(ticket: TicketEvent) -> TicketRef:
    return TicketRef(
        system=ticket.system, ticket_id=ticket.ticket_id, ticket_number=ticket.ticket_number, kind=ticket.kind.value
    )


def _key(principal: str, resource: str, privilege: str) -> EntitlementKey | None:
    try:
        return EntitlementKey(principal=principal, resource=resource, privilege=privilege)
    except ValueError:
        return None


def _beneficiary(ticket: TicketEvent) -> Beneficiary:
    """The entitlement key's principal first, else `requested_for`: canonical as written, or a bare name that
    becomes `<access system>:user:<name>` (lower-cased: emails and logins are case-insensitive everywhere)."""
    reference = ticket.requested_for.strip() if ticket.requested_for and ticket.requested_for.strip() else None
    written = canonical(reference) if reference else None
    if ticket.entitlement is not None:
        principal: str | None = ticket.entitlement.principal
    elif written is not None:
        principal = written
    elif reference is not None and ticket.access is not None:
        try:
            principal = canonical_ref(ticket.access.system, "user", reference.lower())
        except ValueError:
            principal = None
    else:
        principal = None
    principals: set[str] = set()
    names: set[str] = set()
    candidates = [ticket.entitlement.principal] if ticket.entitlement is not None else []
    candidates += [reference] if reference else []
    for value in candidates:
        ref = canonical(value)
        if ref is None:
            names.add(value.lower())
            continue
        principals.add(ref)
        _, ref_type, ref_id = split_ref(ref)
        if ref_type == "user":
            names.add(ref_id.lower())
    person = None
    if reference and ticket.access is None and ticket.entitlement is None and canonical(reference) is None:
        person = None if KEY_SEPARATOR in reference else reference.lower()
    return Beneficiary(reference, principal, frozenset(principals), frozenset(names), person)


def _approvers(ticket: TicketEvent) -> tuple[str, ...]:
    """Who approved, earliest decision first (undated decisions last, in ticket order)."""
    approved = [a for a in ticket.approvers if a.decision is ApprovalDecision.APPROVED]
    dated = sorted((a for a in approved if a.decided_at), key=lambda a: a.decided_at or ticket.occurred_at)
    undated = [a for a in approved if not a.decided_at]
    return tuple(a.approver for a in [*dated, *undated])
