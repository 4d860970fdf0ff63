"""Where each input goes on the join topic (pure): the join is keyed and partitioned by principal.

Partitions are computed here with the Kafka default partitioner (murmur2 of the key), so the reconciler can
tell which partition any key of its state belongs to — timers act only on the partitions a worker owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from aiokafka.partitioner import murmur2

from closeloop.contracts.base import Envelope
from closeloop.contracts.entitlements import EntitlementEvent
from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged, SnapshotMarker
from closeloop.contracts.identity import KEY_SEPARATOR, EntitlementKey, canonical_ref, split_ref
from closeloop.contracts.progress import StreamProgress
from closeloop.contracts.tickets import TicketEvent
from reconciliation.state import REMOVAL_KINDS


@lru_cache(maxsize=131_072)
def partition_for(principal: str, partitions: int) -> int:
    hashed: int = murmur2(principal.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def principal_of_key(key: str) -> str:
    return key.split(KEY_SEPARATOR, 1)[0]


@dataclass(frozen=True)
class Route:
    """`principal`: send to that principal's partition. `broadcast`: send to every partition. Neither: skip."""

    principal: str | None = None
    broadcast: bool = False
    skip_reason: str | None = None


def _canonical(value: str) -> str | None:
    try:
        return canonical_ref(*split_ref(value))
    except ValueError:
        return None


def ticket_principal(event: TicketEvent) -> str | None:
    """The canonical principal a ticket is for: from its entitlement key, else from `requested_for`."""
    if event.entitlement is not None:
        return event.entitlement.principal
    if not event.requested_for:
        return None
    canonical = _canonical(event.requested_for.strip())
    if canonical is not None:
        return canonical
    if event.access is not None:
        try:
            return canonical_ref(event.access.system, "user", event.requested_for.strip().lower())
        except ValueError:
            return None
    return None


def ticket_key(event: TicketEvent, principal: str | None) -> str | None:
    """The exact entitlement key a ticket names, when it names one."""
    if event.entitlement is not None:
        return str(event.entitlement)
    if principal is None or event.access is None:
        return None
    try:
        return str(
            EntitlementKey(principal=principal, resource=event.access.resource, privilege=event.access.privilege)
        )
    except ValueError:
        return None


def person_of(event: TicketEvent) -> str | None:
    """A bare person id (email, login) for a principal-level ticket that names no canonical principal."""
    if event.requested_for is None or event.access is not None or event.entitlement is not None:
        return None
    value = event.requested_for.strip().lower()
    if not value or _canonical(value) is not None or KEY_SEPARATOR in value:
        return None
    return value


def route(event: Envelope) -> Route:
    if isinstance(event, GrantEvent | EntitlementEvent):
        return Route(principal=event.key.principal)
    if isinstance(event, PrincipalStatusChanged):
        principal = _canonical(event.principal)
        return Route(principal=principal) if principal else Route(skip_reason="principal is not canonical")
    if isinstance(event, SnapshotMarker | StreamProgress):
        return Route(broadcast=True)
    if isinstance(event, TicketEvent):
        principal = ticket_principal(event)
        if principal is not None:
            return Route(principal=principal)
        if event.kind in REMOVAL_KINDS and person_of(event) is not None:
            return Route(broadcast=True)
        return Route(skip_reason="ticket names no principal")
    return Route(skip_reason=f"unexpected event type {event.event_type}")
