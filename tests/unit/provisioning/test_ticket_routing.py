"""Which provisioning handler each ticket transition goes to."""

from __future__ import annotations

import pytest

from closeloop.contracts.tickets import TicketKind, TicketTransition
from provisioning.create_entitlement import create_entitlement
from provisioning.kafka_entry import ticket_handler
from provisioning.request_revocation import request_revocation
from tests.unit.provisioning.factories import ticket


@pytest.mark.parametrize(
    ("kind", "transition", "handler"),
    [
        (TicketKind.ACCESS_REQUEST, TicketTransition.APPROVED, create_entitlement),
        (TicketKind.EXCEPTION, TicketTransition.APPROVED, create_entitlement),
        (TicketKind.EXCEPTION, TicketTransition.IN_FULFILMENT, create_entitlement),  # break-glass incident worked
        # Any later transition proves the approval (ServiceNow coalesces the approval into state 2).
        (TicketKind.ACCESS_REQUEST, TicketTransition.IN_FULFILMENT, create_entitlement),
        (TicketKind.ACCESS_REQUEST, TicketTransition.FULFILLED, create_entitlement),
        (TicketKind.ACCESS_REQUEST, TicketTransition.CLOSED_COMPLETE, create_entitlement),
        (TicketKind.EXCEPTION, TicketTransition.CLOSED_CANCELLED, request_revocation),
        (TicketKind.REVOCATION_REQUEST, TicketTransition.IN_FULFILMENT, request_revocation),
        (TicketKind.OFFBOARDING, TicketTransition.APPROVED, None),  # the expiry service's (fans out)
        (TicketKind.OFFBOARDING, TicketTransition.REQUESTED, None),
        (TicketKind.ACCESS_REQUEST, TicketTransition.REOPENED, None),
        (TicketKind.ACCESS_REQUEST, TicketTransition.CLOSED_CANCELLED, request_revocation),
        (TicketKind.ACCESS_REQUEST, TicketTransition.REJECTED, request_revocation),
        (TicketKind.REVOCATION_REQUEST, TicketTransition.APPROVED, request_revocation),
        (TicketKind.REVOCATION_REQUEST, TicketTransition.CLOSED_COMPLETE, request_revocation),
        (TicketKind.OFFBOARDING, TicketTransition.CLOSED_COMPLETE, None),  # the expiry service's
        (TicketKind.ACCESS_REQUEST, TicketTransition.REQUESTED, None),
        (TicketKind.REVOCATION_REQUEST, TicketTransition.REQUESTED, None),
        (TicketKind.RECERTIFICATION, TicketTransition.APPROVED, None),  # the expiry service's
        (TicketKind.PROJECT_END, TicketTransition.CLOSED_COMPLETE, None),  # the expiry service's
    ],
)
def test_ticket_routing_follows_the_interpretation(
    kind: TicketKind, transition: TicketTransition, handler: object
) -> None:
    assert ticket_handler(ticket(kind=kind, transition=transition)) is handler
