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
from closeloop.contracts.identity import KEY_SEPARATOR
from closeloop.contracts.progress import StreamProgress
from closeloop.contracts.ticket_interpretation import canonical, interpret
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


def route(event: Envelope) -> Route:
    if isinstance(event, GrantEvent | EntitlementEvent):
        return Route(principal=event.key.principal)
    if isinstance(event, PrincipalStatusChanged):
        principal = canonical(event.principal)
        return Route(principal=principal) if principal else Route(skip_reason="principal is not canonical")
    if isinstance(event, SnapshotMarker | StreamProgress):
        return Route(broadcast=True)
    if isinstance(event, TicketEvent):
        beneficiary = interpret(event).beneficiary
        if beneficiary.principal is not None:
            return Route(principal=beneficiary.principal)
        if event.kind in REMOVAL_KINDS and beneficiary.person is not None:
            return Route(broadcast=True)
        return Route(skip_reason="ticket names no principal")
    return Route(skip_reason=f"unexpected event type {event.event_type}")
