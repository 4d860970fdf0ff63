"""The record's state machine, derived ids, events and commands built from a record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from closeloop.contracts.codec import decode, encode
from closeloop.contracts.commands import CommandAction
from closeloop.contracts.entitlements import (
    EntitlementChange,
    EntitlementEvent,
    EntitlementStatus,
    RevocationTrigger,
    TicketRef,
)
from closeloop.record import (
    ALLOWED_MOVES,
    Cause,
    EntitlementRecord,
    InvalidTransition,
    check_move,
    derived_id,
    recertification_due,
)
from tests.unit.provisioning.factories import T0, key

S = EntitlementStatus
ACCESS = TicketRef(system="servicenow", ticket_id="sys1", ticket_number="RITM1", kind="access_request")
REVOKE = TicketRef(system="servicenow", ticket_id="sys2", ticket_number="RITM2", kind="revocation_request")


def stored(**fields: object) -> EntitlementRecord:
    values: dict[str, object] = {
        "status": S.ACTIVE,
        "version": 3,
        "created_at": T0,
        "updated_at": T0 + timedelta(hours=1),
    }
    values.update(fields)
    return EntitlementRecord.new(key(), **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, S.PENDING),
        (None, S.REFUSED),
        (S.PENDING, S.ACTIVE),
        (S.PENDING, S.REVOKING),
        (S.ACTIVE, S.REVOKING),
        (S.ACTIVE, S.EXPIRED),
        (S.ACTIVE, S.REVOKED),
        (S.REVOKING, S.REVOKED),
        (S.REVOKING, S.EXPIRED),
        (S.EXPIRED, S.REVOKED),
        (S.REVOKED, S.PENDING),
        (S.REFUSED, S.PENDING),
        (S.ACTIVE, S.ACTIVE),
    ],
)
def test_allowed_moves(before: EntitlementStatus | None, after: EntitlementStatus) -> None:
    check_move(before, after)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, S.ACTIVE),  # a grant alone never creates an approved entitlement
        (None, S.REVOKING),
        (S.REVOKED, S.ACTIVE),  # re-activation needs a new approval (pending first)
        (S.REVOKING, S.ACTIVE),
        (S.REFUSED, S.ACTIVE),
        (S.PENDING, S.REFUSED),
    ],
)
def test_forbidden_moves(before: EntitlementStatus | None, after: EntitlementStatus) -> None:
    with pytest.raises(InvalidTransition):
        check_move(before, after)


def test_every_status_has_a_rule() -> None:
    assert set(ALLOWED_MOVES) == {None, *EntitlementStatus}


def test_recertification_due_from_last_decision_or_grant() -> None:
    record = stored(granted_at=T0, recertification_interval=timedelta(days=90))
    assert recertification_due(record) == T0 + timedelta(days=90)
    later = record.evolve(last_recertified_at=T0 + timedelta(days=80))
    assert recertification_due(later) == T0 + timedelta(days=170)
    assert recertification_due(record.evolve(recertification_interval=None)) is None
    assert recertification_due(record.evolve(granted_at=None)) is None


def test_event_carries_the_whole_record_and_a_version_derived_id() -> None:
    record = stored(
        owner="bob@example.com",
        tickets=(ACCESS,),
        expires_at=T0 + timedelta(days=30),
        last_change=EntitlementChange.ACTIVATED,
        reason="granted at okta",
    )
    cause = Cause(correlation_id="corr-1", event_id="in-1")
    event = record.to_event(cause, "provisioning")
    assert event.event_id == derived_id("entitlement", str(record.key), "3")
    assert event.event_id == record.to_event(Cause.new(), "provisioning").event_id  # replay-stable
    assert event.subject == str(record.key)
    assert (event.status, event.change, event.reason) == (S.ACTIVE, EntitlementChange.ACTIVATED, "granted at okta")
    assert event.tickets == (ACCESS,)
    assert event.record_version == 3
    assert event.source_system == "okta"
    assert event.correlation_id == "corr-1"
    assert decode(encode(event), expected=EntitlementEvent) == event


def test_unstored_record_cannot_be_announced_or_commanded() -> None:
    record = EntitlementRecord.new(key(), status=S.PENDING)
    with pytest.raises(ValueError, match="stored record"):
        record.to_event(Cause.new(), "x")
    with pytest.raises(ValueError, match="stored record"):
        record.command(CommandAction.GRANT, "approved_request", cause=Cause.new(), actor="x")


def test_command_ids_are_per_action_and_version() -> None:
    record = stored()
    cause = Cause.new()
    grant = record.command(CommandAction.GRANT, "approved_request", cause=cause, actor="p", ticket=ACCESS)
    again = record.command(CommandAction.GRANT, "approved_request", cause=Cause.new(), actor="p", ticket=ACCESS)
    revoke = record.command(CommandAction.REVOKE, RevocationTrigger.TICKET, cause=cause, actor="p", ticket=REVOKE)
    assert grant.command_id == again.command_id
    assert grant.event_id == again.event_id
    assert revoke.command_id != grant.command_id
    assert grant.target_system == "okta"
    assert (
        record.evolve(version=4).command(CommandAction.GRANT, "approved_request", cause=cause, actor="p").command_id
        != grant.command_id
    )


def test_ticket_links_and_the_approving_ticket() -> None:
    record = stored(tickets=(ACCESS,))
    assert record.with_ticket(ACCESS) == (ACCESS,)
    linked = record.evolve(tickets=record.with_ticket(REVOKE))
    assert linked.tickets == (ACCESS, REVOKE)
    assert linked.approving_ticket == ACCESS
    assert linked.has_ticket("servicenow", "sys2")
    assert EntitlementRecord.new(key(), status=S.PENDING).approving_ticket is None


def test_revoke_confirmed_needs_a_verification_after_the_request() -> None:
    asked = T0 + timedelta(days=1)
    revoking = stored(status=S.REVOKING, revoke_requested_at=asked, verified_at=T0)
    assert not revoking.revoke_confirmed()
    assert not revoking.evolve(status=S.EXPIRED).revoke_confirmed()
    assert revoking.evolve(status=S.EXPIRED, verified_at=asked + timedelta(minutes=5)).revoke_confirmed()
    assert revoking.evolve(status=S.REVOKED, verified_at=asked).revoke_confirmed()


def test_evolve_validates() -> None:
    with pytest.raises(ValueError, match="timezone"):
        stored().evolve(expires_at=datetime(2026, 1, 1))
    assert stored().evolve(expires_at=datetime(2026, 1, 1, tzinfo=UTC)).expires_at == datetime(2026, 1, 1, tzinfo=UTC)
