"""Bind a ticket's references, as written, to canonical keys (pure): every service then acts on the ticket as if it
had named the ids (the reconciler judges it, provisioning targets the account it binds to).

A ticket naming a person by email becomes one copy per account of theirs on the ticket's system (a ticket for a
person approves the grant to any of their linked accounts); a resource named by display name, `org/repo` or
`<type>:<name>` becomes the catalog's id. A name nobody has taught yet, or one that matches several resources,
leaves the ticket pending (never a guess).
"""

from __future__ import annotations

from dataclasses import dataclass

from closeloop.contracts.identity import EntitlementKey
from closeloop.contracts.tickets import TicketEvent
from closeloop.identity.directory import Directory, Outcome, Resolution


@dataclass(frozen=True)
class Binding:
    """`events`: the ticket as bound (one per account); empty while `unresolved` or `ambiguous` says why."""

    events: tuple[TicketEvent, ...]
    unresolved: tuple[str, ...] = ()
    ambiguous: tuple[str, ...] = ()

    @property
    def pending(self) -> bool:
        return not self.events


def _describe(what: str, system: str, found: Resolution) -> str:
    if found.outcome is Outcome.AMBIGUOUS:
        return f"{what} {found.written!r} on {system} matches {', '.join(found.values)}"
    return f"{what} {found.written!r} on {system}"


def bind_ticket(event: TicketEvent, directory: Directory) -> Binding:
    refs, access = event.references, event.access
    if refs is None or access is None:
        return Binding(events=(event,))
    system = access.system
    provisional = event.entitlement.principal if event.entitlement is not None else None
    person = directory.resolve_person(refs.requested_for, system, provisional) if refs.requested_for else None
    resource = directory.resolve_resource(refs.resource, system, access.resource) if refs.resource else None
    checks = [c for c in (("person", person), ("resource", resource)) if c[1] is not None]
    unresolved = tuple(_describe(w, system, r) for w, r in checks if r and r.outcome is Outcome.UNRESOLVED)
    ambiguous = tuple(_describe(w, system, r) for w, r in checks if r and r.outcome is Outcome.AMBIGUOUS)
    if unresolved or ambiguous:
        return Binding(events=(), unresolved=unresolved, ambiguous=ambiguous)
    accounts = person.values if person is not None else ((provisional,) if provisional else ())
    bound_resource = resource.values[0] if resource is not None else access.resource
    if not accounts:
        return Binding(
            events=(event.model_copy(update={"access": access.model_copy(update={"resource": bound_resource})}),)
        )
    copies = []
    for account in accounts:
        key = EntitlementKey(principal=account, resource=bound_resource, privilege=access.privilege)
        if key == event.entitlement and event.requested_for == account:
            copies.append(event)
            continue
        copies.append(
            event.model_copy(
                update={
                    "requested_for": account,
                    "access": access.model_copy(update={"resource": bound_resource}),
                    "entitlement": key,
                    "subject": str(key),
                }
            )
        )
    return Binding(events=tuple(copies))
