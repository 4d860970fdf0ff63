"""Folding inputs into the join state: out-of-order events, snapshots, sticky record flags, statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus
from closeloop.contracts.grants import CredentialFact, GrantAction, PrincipalStatus, SnapshotPhase
from closeloop.contracts.tickets import TicketKind, TicketTransition
from reconciliation.apply_grant import apply_grant
from reconciliation.apply_record import apply_record
from reconciliation.apply_status import apply_credential, apply_status, index_key
from reconciliation.join_engine import new_state
from reconciliation.merge_ticket import merge_ticket, put_ticket
from reconciliation.state import SnapshotProgress, TicketFact
from reconciliation.sweep_snapshot import in_scope, sweep_entitlement
from tests.unit.reconciliation.scenarios import grant, key, marker, record, status, ticket

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
K = key("okta:user:carol@example.com", "okta:group:00gfin", "member")


def test_ticket_milestones_survive_out_of_order_transitions() -> None:
    approved = ticket(K, TicketTransition.APPROVED, T0, ticket_id="t", version=2)
    fulfilled = ticket(K, TicketTransition.FULFILLED, T0 + timedelta(minutes=5), ticket_id="t", version=3)
    requested = ticket(K, TicketTransition.REQUESTED, T0 - timedelta(minutes=5), ticket_id="t", version=1)
    fact = merge_ticket(None, fulfilled, principal=K.principal, key=str(K))
    fact = merge_ticket(fact, requested, principal=K.principal, key=str(K))  # late and older: milestones only
    fact = merge_ticket(fact, approved, principal=K.principal, key=str(K))
    assert fact.transition == TicketTransition.FULFILLED
    assert fact.approved_at == T0
    assert fact.human_approved
    assert fact.fulfilled_at == T0 + timedelta(minutes=5)


def test_reopening_a_closed_ticket_clears_its_closure_and_rejection_voids_approval() -> None:
    closed = merge_ticket(
        None,
        ticket(K, TicketTransition.CLOSED_COMPLETE, T0, ticket_id="t", kind=TicketKind.REVOCATION_REQUEST),
        principal=None,
        key=str(K),
    )
    assert closed.removal_closed_at == T0
    reopened = merge_ticket(
        closed,
        ticket(
            K, TicketTransition.REOPENED, T0 + timedelta(minutes=1), ticket_id="t", kind=TicketKind.REVOCATION_REQUEST
        ),
        principal=None,
        key=str(K),
    )
    assert reopened.removal_closed_at is None
    rejected = merge_ticket(None, ticket(K, TicketTransition.REJECTED, T0, ticket_id="x"), principal=None, key=str(K))
    assert not rejected.approves_at(T0)


def test_ticket_validity_from_duration_date_or_window() -> None:
    fact = merge_ticket(
        None,
        ticket(K, TicketTransition.APPROVED, T0, ticket_id="t", until=T0 + timedelta(days=1)),
        principal=None,
        key=str(K),
    )
    assert fact.approves_at(T0 + timedelta(hours=23))
    assert not fact.approves_at(T0 + timedelta(days=1))
    window = merge_ticket(
        None,
        ticket(
            K,
            TicketTransition.APPROVED,
            T0,
            ticket_id="w",
            kind=TicketKind.EXCEPTION,
            window_end=T0 + timedelta(hours=2),
        ),
        principal=None,
        key=str(K),
    )
    assert window.valid_until == T0 + timedelta(hours=2)


def test_put_ticket_keeps_the_most_recent() -> None:
    facts: tuple[TicketFact, ...] = ()
    for i in range(5):
        facts = put_ticket(
            facts,
            merge_ticket(
                None,
                ticket(K, TicketTransition.APPROVED, T0 + timedelta(minutes=i), ticket_id=f"t{i}"),
                principal=None,
                key=str(K),
            ),
            limit=3,
        )
    assert [f.ticket_id for f in facts] == ["t4", "t3", "t2"]


def test_a_late_older_revoke_cannot_end_a_newer_grant() -> None:
    state = apply_grant(new_state(str(K)), grant(K, T0 + timedelta(minutes=1)))
    state = apply_grant(state, grant(K, T0, action=GrantAction.REVOKE))
    assert state.grant is not None
    assert state.grant.live
    state = apply_grant(state, grant(K, T0 + timedelta(minutes=2), action=GrantAction.REVOKE))
    assert state.grant is not None
    assert not state.grant.live


def test_snapshot_listings_observe_and_real_events_take_over_as_evidence() -> None:
    listed = grant(K, T0, snapshot_id="s1")
    state = apply_grant(new_state(str(K)), listed)
    assert state.grant is not None
    assert state.grant.live_via_snapshot
    real = grant(K, T0 + timedelta(minutes=1))
    state = apply_grant(state, real)
    assert state.grant is not None
    assert (state.grant.live_since, state.grant.live_event_id, state.grant.live_via_snapshot) == (
        T0,
        real.event_id,
        False,
    )
    relisted = apply_grant(state, grant(K, T0 + timedelta(hours=1), snapshot_id="s2"))
    assert relisted.grant is not None
    assert relisted.grant.live_event_id == real.event_id  # re-listing is not new evidence
    assert relisted.grant.last_snapshot_id == "s2"


def test_record_versions_and_sticky_flags() -> None:
    state = apply_record(new_state(str(K)), record(K, T0, version=2))
    older = apply_record(state, record(K, T0 + timedelta(hours=1), version=1, status=EntitlementStatus.REVOKED))
    assert older == state
    flagged = apply_record(state, record(K, T0, change=EntitlementChange.OWNER_OFFBOARDED, version=3))
    verified = apply_record(flagged, record(K, T0, change=EntitlementChange.VERIFIED, version=4))
    assert verified.record is not None
    assert verified.record.owner_offboarded_at == T0
    changed = apply_record(
        verified, record(K, T0, change=EntitlementChange.OWNER_CHANGED, owner="new@example.com", version=5)
    )
    assert changed.record is not None
    assert changed.record.owner_offboarded_at is None
    unconfirmed = apply_record(
        state, record(K, T0, change=EntitlementChange.REVOKE_UNCONFIRMED, status=EntitlementStatus.REVOKING, version=3)
    )
    revoked = apply_record(
        unconfirmed, record(K, T0, change=EntitlementChange.REVOKED, status=EntitlementStatus.REVOKED, version=4)
    )
    assert unconfirmed.record is not None
    assert unconfirmed.record.revoke_unconfirmed_at == T0
    assert revoked.record is not None
    assert revoked.record.revoke_unconfirmed_at is None


def test_status_changes_apply_in_time_order_and_credentials_reach_their_grant() -> None:
    principal = apply_status(None, status(K.principal, T0 + timedelta(minutes=1), PrincipalStatus.DEACTIVATED))
    late = apply_status(principal, status(K.principal, T0, PrincipalStatus.ACTIVE))
    assert late.status == PrincipalStatus.DEACTIVATED
    assert index_key(late, K.principal, str(K)).keys == (str(K),)
    credential = CredentialFact(credential_id="AKIA1", credential_type="aws_access_key", created_at=T0)
    state = apply_grant(new_state(str(K)), grant(K, T0, credential=credential))
    rotated = CredentialFact(credential_id="AKIA1", credential_type="aws_access_key", rotated_at=T0 + timedelta(days=1))
    updated = apply_credential(state, rotated)
    assert updated is not None
    assert updated.grant is not None
    assert updated.grant.credential is not None
    assert (updated.grant.credential.created_at, updated.grant.credential.rotated_at) == (T0, T0 + timedelta(days=1))
    assert apply_credential(state, CredentialFact(credential_id="OTHER", credential_type="aws_access_key")) is None


def test_sweep_marks_only_what_was_live_before_the_listing_and_in_scope() -> None:
    progress = SnapshotProgress(snapshot_id="s9", source_system="okta", scope="okta:*:*", started_at=T0, expected=1)
    before = apply_grant(new_state(str(K)), grant(K, T0 - timedelta(minutes=1)))
    swept = sweep_entitlement(before, progress)
    assert swept is not None
    assert swept.grant is not None
    assert (swept.grant.live, swept.grant.gone_by_snapshot) == (False, "s9")
    during = apply_grant(new_state(str(K)), grant(K, T0 + timedelta(seconds=1)))
    assert sweep_entitlement(during, progress) is None
    listed = apply_grant(before, grant(K, T0 + timedelta(seconds=2), snapshot_id="s9"))
    assert sweep_entitlement(listed, progress) is None
    record_only = apply_record(new_state(str(K)), record(K, T0 - timedelta(hours=1)))
    gone = sweep_entitlement(record_only, progress)
    assert gone is not None
    assert not gone.live
    assert in_scope(before, "okta:group:00gfin")
    assert not in_scope(before, "github:*:*")
    assert marker("s9", SnapshotPhase.STARTED, T0, "okta:*:*").phase == SnapshotPhase.STARTED


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(6))))
def test_grant_liveness_does_not_depend_on_arrival_order(order: list[int]) -> None:
    events = [
        grant(K, T0 + timedelta(minutes=i), action=GrantAction.GRANT if i % 2 == 0 else GrantAction.REVOKE)
        for i in range(6)
    ]
    state = new_state(str(K))
    for index in order:
        state = apply_grant(state, events[index])
    assert state.grant is not None
    assert state.grant.live is False  # the latest event (minute 5) is a revoke
    assert state.grant.last_event_at == T0 + timedelta(minutes=5)
