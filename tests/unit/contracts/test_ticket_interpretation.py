"""One interpretation of a ticket: approval standing, action, what, for whom, until when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from closeloop.contracts.identity import EntitlementKey
from closeloop.contracts.ticket_interpretation import Standing, TicketAction, interpret
from closeloop.contracts.tickets import Approval, ApprovalDecision, TicketEvent, TicketKind, TicketTransition

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = EntitlementKey(principal="okta:user:alice@example.com", resource="okta:group:00g1engreaders", privilege="member")
ACCESS = {"system": "okta", "resource": KEY.resource, "privilege": KEY.privilege}

STANDING = {
    TicketTransition.REQUESTED: Standing.PENDING,
    TicketTransition.REOPENED: Standing.PENDING,
    TicketTransition.APPROVED: Standing.APPROVED,
    TicketTransition.IN_FULFILMENT: Standing.APPROVED,
    TicketTransition.FULFILLED: Standing.APPROVED,
    TicketTransition.CLOSED_COMPLETE: Standing.APPROVED,
    TicketTransition.REJECTED: Standing.WITHDRAWN,
    TicketTransition.CLOSED_CANCELLED: Standing.WITHDRAWN,
}
ACTION = {
    TicketKind.ACCESS_REQUEST: TicketAction.GRANT,
    TicketKind.EXCEPTION: TicketAction.EXCEPTION,
    TicketKind.REVOCATION_REQUEST: TicketAction.REVOKE,
    TicketKind.OFFBOARDING: TicketAction.FAN_OUT,
    TicketKind.PROJECT_END: TicketAction.FAN_OUT,
    TicketKind.RECERTIFICATION: TicketAction.FAN_OUT,
}


def ticket(
    transition: TicketTransition = TicketTransition.APPROVED,
    kind: TicketKind = TicketKind.ACCESS_REQUEST,
    *,
    occurred_at: datetime = T0,
    **fields: object,
) -> TicketEvent:
    values: dict[str, object] = {"requested_for": "Alice@Example.com", "access": ACCESS}
    values.update(fields)
    event: TicketEvent = TicketEvent.create(
        occurred_at=occurred_at,
        source="servicenow://example",
        correlation_id="corr-1",
        system="servicenow",
        ticket_id="sys-ritm-1",
        ticket_number="RITM0010001",
        kind=kind,
        transition=transition,
        state="2",
        **values,
    )
    return event


@pytest.mark.parametrize(("kind", "transition"), list(product(TicketKind, TicketTransition)))
def test_every_kind_and_transition_has_one_action_and_standing(kind: TicketKind, transition: TicketTransition) -> None:
    meaning = interpret(ticket(transition, kind))
    assert meaning.action is ACTION[kind]
    assert meaning.standing is STANDING[transition]
    assert meaning.approved is (STANDING[transition] is Standing.APPROVED)
    assert meaning.withdrawn is (STANDING[transition] is Standing.WITHDRAWN)
    assert (meaning.ticket.system, meaning.ticket.ticket_id, meaning.ticket.kind) == ("servicenow", "sys-ritm-1", kind)


def test_a_coalesced_delivery_in_work_in_progress_is_an_approval_with_its_duration() -> None:
    """requested → state 2 with approval=approved in one delivery: intake publishes `in_fulfilment` only."""
    meaning = interpret(ticket(TicketTransition.IN_FULFILMENT, requested_duration=timedelta(seconds=20)))
    assert meaning.approved
    assert meaning.approval_seen_at == T0
    assert not meaning.human_approved  # the workflow stage proves it, no approver is named
    assert meaning.entitlement == KEY
    assert meaning.term.duration == timedelta(seconds=20)


def test_every_transition_of_one_ticket_proves_the_same_single_approval() -> None:
    keys = {interpret(ticket(t)).approval_key for t in TicketTransition}
    assert keys == {"approval:servicenow:sys-ritm-1"}


def test_approval_time_is_the_earliest_evidence_in_the_delivery() -> None:
    early = T0 - timedelta(hours=1)
    approvers = (
        Approval(approver="late", decision=ApprovalDecision.APPROVED, decided_at=T0 - timedelta(minutes=5)),
        Approval(approver="rejecter", decision=ApprovalDecision.REJECTED, decided_at=T0 - timedelta(hours=2)),
        Approval(approver="undated", decision=ApprovalDecision.APPROVED),
        Approval(approver="early", decision=ApprovalDecision.APPROVED, decided_at=early),
    )
    meaning = interpret(ticket(TicketTransition.FULFILLED, approvers=approvers))
    assert meaning.approval_seen_at == early
    assert meaning.human_approved
    assert meaning.approvers == ("early", "late", "undated")


def test_an_approver_on_a_still_requested_ticket_is_evidence_but_not_approval() -> None:
    decided = T0 - timedelta(minutes=1)
    approvers = (Approval(approver="mgr", decision=ApprovalDecision.APPROVED, decided_at=decided),)
    meaning = interpret(ticket(TicketTransition.REQUESTED, approvers=approvers))
    assert meaning.standing is Standing.PENDING
    assert meaning.approval_seen_at == decided


@pytest.mark.parametrize("transition", [TicketTransition.REJECTED, TicketTransition.CLOSED_CANCELLED])
def test_rejected_or_cancelled_is_withdrawn_and_proves_no_approval(transition: TicketTransition) -> None:
    meaning = interpret(ticket(transition))
    assert meaning.withdrawn
    assert meaning.approval_seen_at is None
    assert meaning.entitlement == KEY  # what it had asked for, so its grant can be withdrawn


def test_for_whom_a_bare_name_becomes_the_access_systems_user() -> None:
    meaning = interpret(ticket(requested_for=" Alice@Example.com "))
    assert meaning.beneficiary.reference == "Alice@Example.com"
    assert meaning.beneficiary.principal == "okta:user:alice@example.com"
    assert meaning.entitlement == KEY
    assert meaning.beneficiary.person is None  # it names an entitlement, not a person everywhere


def test_for_whom_a_canonical_reference_is_kept_and_the_key_wins() -> None:
    canonical = interpret(ticket(requested_for="OKTA:User:bob@example.com"))
    assert canonical.beneficiary.principal == "okta:user:bob@example.com"
    keyed = interpret(ticket(requested_for="someone-else@example.com", entitlement=KEY))
    assert keyed.beneficiary.principal == KEY.principal
    assert keyed.entitlement == KEY
    assert keyed.beneficiary.principals == frozenset({KEY.principal})
    assert keyed.beneficiary.names == frozenset({"alice@example.com", "someone-else@example.com"})


def test_what_is_approved_can_be_held_by_a_resolved_principal() -> None:
    resolved = interpret(ticket()).entitlement_for("okta:user:00u1alice0000000000")
    assert resolved == EntitlementKey(
        principal="okta:user:00u1alice0000000000", resource=KEY.resource, privilege="member"
    )
    assert interpret(ticket(access=None)).entitlement_for("okta:user:x") is None


def test_a_ticket_without_access_names_no_entitlement() -> None:
    meaning = interpret(ticket(access=None))
    assert meaning.entitlement is None
    assert meaning.beneficiary.principal is None


def test_offboarding_names_the_person_in_every_system() -> None:
    keyed = interpret(ticket(kind=TicketKind.OFFBOARDING, entitlement=KEY, requested_for=None, access=None))
    assert keyed.beneficiary.principals == frozenset({KEY.principal})
    assert keyed.beneficiary.names == frozenset({"alice@example.com"})
    bare = interpret(ticket(kind=TicketKind.OFFBOARDING, requested_for="Bob@Example.com", access=None))
    assert (bare.beneficiary.principals, bare.beneficiary.names) == (frozenset(), frozenset({"bob@example.com"}))
    assert bare.beneficiary.person == "bob@example.com"
    nhi = interpret(ticket(kind=TicketKind.OFFBOARDING, requested_for="k8s:serviceaccount:ci/deployer", access=None))
    assert nhi.beneficiary.principals == frozenset({"k8s:serviceaccount:ci/deployer"})
    assert nhi.beneficiary.names == frozenset()  # only a user's id stands for a person elsewhere
    assert nhi.beneficiary.person is None
    nobody = interpret(ticket(kind=TicketKind.OFFBOARDING, requested_for="  ", access=None))
    assert not nobody.beneficiary.named


def test_until_when_and_for_which_project() -> None:
    start, end = T0, T0 + timedelta(hours=4)
    meaning = interpret(
        ticket(
            TicketTransition.IN_FULFILMENT,
            TicketKind.EXCEPTION,
            window_start=start,
            window_end=end,
            requested_until=end,
            project=" apollo ",
        )
    )
    assert (meaning.term.window_start, meaning.term.window_end, meaning.term.until) == (start, end, end)
    assert meaning.term.duration is None
    assert meaning.project == "apollo"
    assert interpret(ticket(project="  ")).project is None
