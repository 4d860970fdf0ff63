"""Deriving the transition from the last seen state: first sight, ordering, duplicates, reopening."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from closeloop.contracts.tickets import TicketTransition
from request_intake.normalizers import normalize
from request_intake.observation import TicketObservation
from request_intake.transitions import LastSeen, Verdict, decide
from tests.unit.request_intake.fixtures import default_mapping, load

T = TicketTransition
AT = datetime(2026, 1, 5, 9, tzinfo=UTC)


def obs(
    phase: TicketTransition,
    version: int | None,
    *,
    state: str = "s",
    updated_at: datetime | None = AT,
    hint: TicketTransition | None = None,
    previous: str | None = None,
    reopened: bool = False,
) -> TicketObservation:
    [base] = normalize("servicenow", load("servicenow", "ritm_requested.json"), default_mapping())
    assert isinstance(base, TicketObservation)
    return replace(
        base,
        phase=phase,
        version=version,
        vendor_state=state,
        updated_at=updated_at,
        previous_phase_hint=hint,
        previous_vendor_state=previous,
        reopened_hint=reopened,
    )


def last(
    phase: TicketTransition, version: int | None, state: str = "old", updated_at: datetime | None = AT
) -> LastSeen:
    return LastSeen(phase=phase, vendor_state=state, version=version, updated_at=updated_at)


def test_first_sight_publishes_the_current_status() -> None:
    decision = decide(obs(T.APPROVED, 4), None)
    assert (decision.verdict, decision.transition, decision.previous_state) == (Verdict.PUBLISH, T.APPROVED, None)


def test_first_sight_uses_what_the_record_says_came_before() -> None:
    decision = decide(obs(T.APPROVED, 4, hint=T.REQUESTED, previous="Waiting"), None)
    assert (decision.transition, decision.previous_state) == (T.APPROVED, "Waiting")


def test_newer_revision_in_another_status_is_a_transition() -> None:
    decision = decide(obs(T.CLOSED_COMPLETE, 9, state="state=3"), last(T.APPROVED, 4, "state=1"))
    assert (decision.verdict, decision.transition, decision.previous_state) == (
        Verdict.PUBLISH,
        T.CLOSED_COMPLETE,
        "state=1",
    )


def test_same_revision_is_a_duplicate() -> None:
    assert decide(obs(T.APPROVED, 4), last(T.APPROVED, 4)).verdict is Verdict.DUPLICATE


def test_older_revision_is_stale_and_never_moves_the_ticket_back() -> None:
    assert decide(obs(T.APPROVED, 4), last(T.CLOSED_COMPLETE, 9)).verdict is Verdict.STALE


def test_newer_revision_in_the_same_status_is_no_transition() -> None:
    assert decide(obs(T.APPROVED, 5), last(T.APPROVED, 4)).verdict is Verdict.NO_TRANSITION


@pytest.mark.parametrize("closed", [T.CLOSED_COMPLETE, T.CLOSED_CANCELLED, T.REJECTED])
def test_leaving_a_closed_status_is_a_reopening(closed: TicketTransition) -> None:
    decision = decide(obs(T.IN_FULFILMENT, 12), last(closed, 9))
    assert decision.transition is T.REOPENED


def test_reopening_said_by_the_vendor_on_first_sight() -> None:
    assert decide(obs(T.REQUESTED, 30412, reopened=True), None).transition is T.REOPENED
    assert decide(obs(T.REQUESTED, 30412, hint=T.CLOSED_COMPLETE), None).transition is T.REOPENED


def test_closing_again_after_a_reopening_is_a_close() -> None:
    assert decide(obs(T.CLOSED_COMPLETE, 14), last(T.IN_FULFILMENT, 12)).transition is T.CLOSED_COMPLETE


def test_without_versions_the_update_time_orders() -> None:
    later, earlier = AT + timedelta(minutes=5), AT - timedelta(minutes=5)
    assert decide(obs(T.CLOSED_COMPLETE, None, updated_at=later), last(T.APPROVED, None)).verdict is Verdict.PUBLISH
    assert decide(obs(T.CLOSED_COMPLETE, None, updated_at=earlier), last(T.APPROVED, None)).verdict is Verdict.STALE
    same = obs(T.APPROVED, None, state="old")
    assert decide(same, last(T.APPROVED, None, "old")).verdict is Verdict.DUPLICATE


def test_same_second_with_a_different_state_is_not_a_duplicate() -> None:
    decision = decide(obs(T.CLOSED_COMPLETE, None, state="new"), last(T.APPROVED, None, "old"))
    assert (decision.verdict, decision.transition) == (Verdict.PUBLISH, T.CLOSED_COMPLETE)


def test_a_revision_without_version_after_versioned_ones_is_ordered_by_time() -> None:
    # Jira deletion: no changelog id; the last seen had one.
    deletion = obs(T.CLOSED_CANCELLED, None, updated_at=AT + timedelta(days=1))
    assert decide(deletion, last(T.APPROVED, 20005)).transition is T.CLOSED_CANCELLED


def test_nothing_to_order_by_and_same_content_is_a_duplicate() -> None:
    assert decide(obs(T.APPROVED, None, updated_at=None), last(T.APPROVED, 4, "s")).verdict is Verdict.DUPLICATE
