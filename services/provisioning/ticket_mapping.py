"""What a ticket says in record terms: its reference, the entitlement it names, who approved it."""

from __future__ import annotations

from closeloop.contracts.entitlements import TicketRef
from closeloop.contracts.identity import EntitlementKey, canonical_ref, split_ref
from closeloop.contracts.tickets import ApprovalDecision, TicketEvent


def ticket_ref(ticket: TicketEvent) -> TicketRef:
    return TicketRef(
        system=ticket.system,
        ticket_id=ticket.ticket_id,
        ticket_number=ticket.ticket_number,
        kind=ticket.kind.value,
    )


def is_canonical(name: str) -> bool:
    try:
        split_ref(name)
    except ValueError:
        return False
    return True


def principal_of(ticket: TicketEvent) -> str | None:
    """The beneficiary as a canonical principal, when the ticket lets us name one.

    `requested_for` is canonical if it has the `x:y:z` form, else `<access system>:user:<value>` with
    the value lower-cased (emails and logins are case-insensitive in every supported system).
    """
    if ticket.entitlement is not None:
        return ticket.entitlement.principal
    if not ticket.requested_for:
        return None
    value = ticket.requested_for.strip()
    if is_canonical(value):
        system, ref_type, ref_id = split_ref(value)
        return canonical_ref(system, ref_type, ref_id)
    if ticket.access is None:
        return None
    return canonical_ref(ticket.access.system, "user", value.lower())


def entitlement_key(ticket: TicketEvent, principal: str | None = None) -> EntitlementKey | None:
    """The entitlement a ticket names: its own key, or requested_for + requested access."""
    if ticket.entitlement is not None and principal is None:
        return ticket.entitlement
    principal = principal or principal_of(ticket)
    if principal is None:
        return None
    if ticket.entitlement is not None:
        return EntitlementKey(
            principal=principal, resource=ticket.entitlement.resource, privilege=ticket.entitlement.privilege
        )
    if ticket.access is None:
        return None
    try:
        return EntitlementKey(principal=principal, resource=ticket.access.resource, privilege=ticket.access.privilege)
    except ValueError:
        return None


def approvers(ticket: TicketEvent) -> tuple[str, ...]:
    """Who approved, earliest decision first (undated decisions last, in ticket order)."""
    approved = [a for a in ticket.approvers if a.decision == ApprovalDecision.APPROVED]
    dated = sorted((a for a in approved if a.decided_at), key=lambda a: a.decided_at or ticket.occurred_at)
    undated = [a for a in approved if not a.decided_at]
    return tuple(a.approver for a in [*dated, *undated])


def principal_names(ticket: TicketEvent) -> tuple[set[str], set[str]]:
    """Canonical principals and bare names (emails, logins) an offboarding ticket is about.

    A person leaves every system at once: a user principal also contributes its id (the email or
    login) as a name, so `okta:user:alice@example.com` offboards `entra:user:alice@example.com` too.
    """
    principals: set[str] = set()
    names: set[str] = set()
    candidates = [ticket.entitlement.principal] if ticket.entitlement is not None else []
    if ticket.requested_for and ticket.requested_for.strip():
        candidates.append(ticket.requested_for.strip())
    for value in candidates:
        if not is_canonical(value):
            names.add(value.lower())
            continue
        system, ref_type, ref_id = split_ref(value)
        principals.add(canonical_ref(system, ref_type, ref_id))
        if ref_type.lower() == "user":
            names.add(ref_id.lower())
    return principals, names
