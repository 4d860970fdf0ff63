"""Tickets in record terms, and which handler each ticket transition goes to."""

from __future__ import annotations

from datetime import timedelta

import pytest

from closeloop.contracts.tickets import Approval, ApprovalDecision, TicketKind, TicketTransition
from provisioning.create_entitlement import create_entitlement
from provisioning.kafka_entry import ticket_handler
from provisioning.request_revocation import request_revocation
from provisioning.ticket_mapping import approvers, entitlement_key, principal_names, principal_of, ticket_ref
from tests.unit.provisioning.factories import T0, key, ticket


def test_fixture_ticket_maps_to_its_entitlement_and_reference() -> None:
    event = ticket()
    assert entitlement_key(event) == key()
    ref = ticket_ref(event)
    assert (ref.system, ref.kind) == ("servicenow", "access_request")
    assert ref.ticket_number == event.ticket_number


def test_requested_for_without_a_key_is_prefixed_with_the_access_system() -> None:
    event = ticket(entitlement=None).model_copy(update={"entitlement": None, "requested_for": "Alice@Example.com"})
    assert principal_of(event) == "okta:user:alice@example.com"
    assert entitlement_key(event) == key()


def test_canonical_requested_for_is_kept() -> None:
    event = ticket().model_copy(update={"entitlement": None, "requested_for": "OKTA:User:bob@example.com"})
    assert principal_of(event) == "okta:user:bob@example.com"


def test_ticket_without_access_names_no_entitlement() -> None:
    event = ticket().model_copy(update={"entitlement": None, "access": None, "requested_for": "alice@example.com"})
    assert entitlement_key(event) is None
    assert principal_of(event) is None


def test_alias_resolution_replaces_the_principal() -> None:
    resolved = entitlement_key(ticket(), "okta:user:00u1alice0000000000")
    assert resolved is not None
    assert resolved.principal == "okta:user:00u1alice0000000000"
    assert resolved.resource == key().resource


def test_approvers_in_decision_order_only_approvals() -> None:
    event = ticket().model_copy(
        update={
            "approvers": (
                Approval(approver="late", decision=ApprovalDecision.APPROVED, decided_at=T0),
                Approval(approver="rejecter", decision=ApprovalDecision.REJECTED, decided_at=T0 - timedelta(hours=2)),
                Approval(approver="undated", decision=ApprovalDecision.APPROVED),
                Approval(approver="early", decision=ApprovalDecision.APPROVED, decided_at=T0 - timedelta(hours=1)),
            )
        }
    )
    assert approvers(event) == ("early", "late", "undated")


def test_offboarding_names_the_person_in_every_system() -> None:
    principals, names = principal_names(ticket(kind=TicketKind.OFFBOARDING))
    assert principals == {"okta:user:alice@example.com"}
    assert names == {"alice@example.com"}
    bare = ticket(kind=TicketKind.OFFBOARDING).model_copy(
        update={"entitlement": None, "requested_for": "Bob@Example.com"}
    )
    assert principal_names(bare) == (set(), {"bob@example.com"})
    nhi = ticket(kind=TicketKind.OFFBOARDING).model_copy(
        update={"entitlement": None, "requested_for": "k8s:serviceaccount:ci/deployer"}
    )
    assert principal_names(nhi) == ({"k8s:serviceaccount:ci/deployer"}, set())


@pytest.mark.parametrize(
    ("kind", "transition", "handler"),
    [
        (TicketKind.ACCESS_REQUEST, TicketTransition.APPROVED, create_entitlement),
        (TicketKind.EXCEPTION, TicketTransition.APPROVED, create_entitlement),
        (TicketKind.EXCEPTION, TicketTransition.IN_FULFILMENT, create_entitlement),  # break-glass incident worked
        (TicketKind.ACCESS_REQUEST, TicketTransition.IN_FULFILMENT, None),
        (TicketKind.ACCESS_REQUEST, TicketTransition.CLOSED_CANCELLED, request_revocation),
        (TicketKind.ACCESS_REQUEST, TicketTransition.REJECTED, request_revocation),
        (TicketKind.REVOCATION_REQUEST, TicketTransition.APPROVED, request_revocation),
        (TicketKind.REVOCATION_REQUEST, TicketTransition.CLOSED_COMPLETE, request_revocation),
        (TicketKind.OFFBOARDING, TicketTransition.CLOSED_COMPLETE, request_revocation),
        (TicketKind.ACCESS_REQUEST, TicketTransition.REQUESTED, None),
        (TicketKind.ACCESS_REQUEST, TicketTransition.FULFILLED, None),
        (TicketKind.ACCESS_REQUEST, TicketTransition.CLOSED_COMPLETE, None),
        (TicketKind.REVOCATION_REQUEST, TicketTransition.REQUESTED, None),
        (TicketKind.RECERTIFICATION, TicketTransition.APPROVED, None),  # the expiry service's
        (TicketKind.PROJECT_END, TicketTransition.CLOSED_COMPLETE, None),  # the expiry service's
    ],
)
def test_ticket_routing(kind: TicketKind, transition: TicketTransition, handler: object) -> None:
    assert ticket_handler(ticket(kind=kind, transition=transition)) is handler
