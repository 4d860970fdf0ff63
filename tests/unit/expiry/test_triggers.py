from __future__ import annotations

from datetime import UTC, datetime

from closeloop.contracts.grants import PrincipalStatus, PrincipalStatusChanged
from closeloop.contracts.identity import EntitlementKey
from closeloop.contracts.tickets import (
    Approval,
    ApprovalDecision,
    TicketEvent,
    TicketKind,
    TicketTransition,
)
from expiry.recertification import Decision
from expiry.triggers import (
    EndProject,
    Ignored,
    OffboardPrincipal,
    PrincipalMatch,
    RecertificationDecision,
    Unusable,
    from_principal_status,
    from_ticket,
)

WHEN = datetime(2026, 4, 1, 10, tzinfo=UTC)
OFFBOARDED = (PrincipalStatus.DEACTIVATED, PrincipalStatus.DELETED)
KEY = EntitlementKey(principal="okta:user:alice@example.com", resource="okta:group:00g1engadmins", privilege="member")


def status_event(status: PrincipalStatus, aliases: tuple[str, ...] = ()) -> PrincipalStatusChanged:
    event: PrincipalStatusChanged = PrincipalStatusChanged.create(
        occurred_at=WHEN,
        source="okta://example.okta.com",
        correlation_id="corr-1",
        principal="okta:user:alice@example.com",
        principal_aliases=aliases,
        status=status,
        source_system="okta",
        vendor_event_id="okta-evt-1",
        vendor_event_type="user.lifecycle.deactivate",
    )
    return event


def ticket(kind: TicketKind, transition: TicketTransition, **fields: object) -> TicketEvent:
    event: TicketEvent = TicketEvent.create(
        occurred_at=WHEN,
        source="servicenow://example",
        correlation_id="corr-2",
        system="servicenow",
        ticket_id="sys-42",
        ticket_number="RITM0042",
        kind=kind,
        transition=transition,
        state="approved",
        **fields,
    )
    return event


def test_principal_match_by_canonical_name_bare_name_and_owner_forms() -> None:
    match = PrincipalMatch.of("okta:user:alice@example.com", "Alice.Smith", "")
    assert match.principals == frozenset({"okta:user:alice@example.com"})
    assert match.names == frozenset({"alice@example.com", "alice.smith"})
    assert match.matches_principal("okta:user:alice@example.com")
    assert match.matches_principal("entra:user:ALICE@example.com")
    assert match.matches_principal("github:user:alice.smith")
    assert not match.matches_principal("okta:user:bob@example.com")
    assert not match.matches_principal("not-canonical")
    assert match.matches_owner("alice@example.com")
    assert match.matches_owner("okta:user:alice@example.com")
    assert match.matches_owner(" Alice@Example.com ")
    assert not match.matches_owner(None)
    assert not match.matches_owner("bob@example.com")


def test_deactivation_offboards_with_aliases() -> None:
    resolved = from_principal_status(status_event(PrincipalStatus.DEACTIVATED, ("alice.smith",)), OFFBOARDED)
    assert isinstance(resolved, OffboardPrincipal)
    assert resolved.subject == "okta:user:alice@example.com"
    assert resolved.who.matches_principal("github:user:alice.smith")
    assert resolved.source_event_id
    assert resolved.ticket is None


def test_suspension_and_reactivation_are_not_offboarding_by_default() -> None:
    assert from_principal_status(status_event(PrincipalStatus.SUSPENDED), OFFBOARDED) == Ignored("status_suspended")
    assert from_principal_status(status_event(PrincipalStatus.ACTIVE), OFFBOARDED) == Ignored("status_active")
    suspended = from_principal_status(status_event(PrincipalStatus.SUSPENDED), (PrincipalStatus.SUSPENDED,))
    assert isinstance(suspended, OffboardPrincipal)


def test_offboarding_ticket_fires_once_approved() -> None:
    approved = from_ticket(ticket(TicketKind.OFFBOARDING, TicketTransition.APPROVED, requested_for="alice@example.com"))
    assert isinstance(approved, OffboardPrincipal)
    assert approved.ticket is not None
    assert approved.ticket.ticket_number == "RITM0042"
    assert approved.who.names == frozenset({"alice@example.com"})
    requested = from_ticket(
        ticket(TicketKind.OFFBOARDING, TicketTransition.REQUESTED, requested_for="alice@example.com")
    )
    assert requested == Ignored("transition_requested")
    nobody = from_ticket(ticket(TicketKind.OFFBOARDING, TicketTransition.APPROVED))
    assert nobody == Unusable("offboarding ticket names nobody (requested_for is empty)")


def test_project_end_ticket_names_the_project() -> None:
    ended = from_ticket(ticket(TicketKind.PROJECT_END, TicketTransition.CLOSED_COMPLETE, project=" apollo "))
    assert isinstance(ended, EndProject)
    assert ended.project == "apollo"
    unnamed = from_ticket(ticket(TicketKind.PROJECT_END, TicketTransition.APPROVED))
    assert unnamed == Unusable("project-end ticket names no project")


def test_recertification_ticket_approved_certifies_rejected_revokes() -> None:
    decided = datetime(2026, 4, 1, 9, tzinfo=UTC)
    certified = from_ticket(
        ticket(
            TicketKind.RECERTIFICATION,
            TicketTransition.APPROVED,
            entitlement=KEY,
            approvers=(Approval(approver="mgr@example.com", decision=ApprovalDecision.APPROVED, decided_at=decided),),
        )
    )
    assert isinstance(certified, RecertificationDecision)
    assert (certified.decision, certified.reviewer, certified.decided_at) == (
        Decision.CERTIFY,
        "mgr@example.com",
        decided,
    )
    revoked = from_ticket(
        ticket(TicketKind.RECERTIFICATION, TicketTransition.REJECTED, entitlement=KEY, actor="mgr2@example.com")
    )
    assert isinstance(revoked, RecertificationDecision)
    assert (revoked.decision, revoked.reviewer, revoked.decided_at) == (Decision.REVOKE, "mgr2@example.com", WHEN)


def test_recertification_ticket_without_decision_key_or_reviewer_is_unusable() -> None:
    assert from_ticket(ticket(TicketKind.RECERTIFICATION, TicketTransition.REQUESTED, entitlement=KEY)) == Ignored(
        "transition_requested"
    )
    assert from_ticket(ticket(TicketKind.RECERTIFICATION, TicketTransition.APPROVED, actor="x")) == Unusable(
        "recertification ticket names no entitlement"
    )
    assert from_ticket(ticket(TicketKind.RECERTIFICATION, TicketTransition.APPROVED, entitlement=KEY)) == Unusable(
        "recertification decision names no reviewer"
    )


def test_other_ticket_kinds_are_not_expiry_triggers() -> None:
    assert from_ticket(ticket(TicketKind.ACCESS_REQUEST, TicketTransition.APPROVED)) == Ignored("kind_access_request")


def test_a_recertification_approval_proved_by_a_later_transition_is_one_decision() -> None:
    reviewer = (Approval(approver="mgr@example.com", decision=ApprovalDecision.APPROVED),)
    approved, fulfilled, closed = (
        from_ticket(ticket(TicketKind.RECERTIFICATION, transition, entitlement=KEY, approvers=reviewer))
        for transition in (TicketTransition.APPROVED, TicketTransition.IN_FULFILMENT, TicketTransition.CLOSED_COMPLETE)
    )
    assert isinstance(approved, RecertificationDecision)
    assert isinstance(fulfilled, RecertificationDecision)
    assert isinstance(closed, RecertificationDecision)
    assert {approved.decision, fulfilled.decision, closed.decision} == {Decision.CERTIFY}
    assert approved.claim_id == fulfilled.claim_id == closed.claim_id
    assert approved.source_event_id != closed.source_event_id
    rejected = from_ticket(ticket(TicketKind.RECERTIFICATION, TicketTransition.REJECTED, entitlement=KEY, actor="m"))
    assert isinstance(rejected, RecertificationDecision)
    assert rejected.claim_id != approved.claim_id


def test_offboarding_coalesced_into_a_later_transition_still_fires() -> None:
    for transition in (TicketTransition.IN_FULFILMENT, TicketTransition.FULFILLED, TicketTransition.CLOSED_COMPLETE):
        fired = from_ticket(ticket(TicketKind.OFFBOARDING, transition, requested_for="alice@example.com"))
        assert isinstance(fired, OffboardPrincipal)
    for transition in (TicketTransition.REJECTED, TicketTransition.CLOSED_CANCELLED, TicketTransition.REOPENED):
        assert from_ticket(ticket(TicketKind.OFFBOARDING, transition, requested_for="alice@example.com")) == Ignored(
            f"transition_{transition.value}"
        )
