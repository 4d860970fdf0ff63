from __future__ import annotations

from datetime import UTC, datetime, timedelta

from closeloop.contracts.identity import IdentityKind
from expiry.recertification import RecertPolicy, RecertStage

POLICY = RecertPolicy(
    interval_human=timedelta(days=180),
    interval_nhi=timedelta(days=90),
    due_lead=timedelta(days=14),
    overdue_grace=timedelta(days=1),
    revoke_after=timedelta(days=30),
)
GRANTED = datetime(2026, 1, 1, tzinfo=UTC)


def test_due_date_from_policy_by_identity_kind() -> None:
    human = POLICY.due_at(
        kind=IdentityKind.HUMAN, own_interval=None, own_due_at=None, last_recertified_at=None, granted_at=GRANTED
    )
    nhi = POLICY.due_at(
        kind=IdentityKind.SERVICE_ACCOUNT,
        own_interval=None,
        own_due_at=None,
        last_recertified_at=None,
        granted_at=GRANTED,
    )
    assert human == GRANTED + timedelta(days=180)
    assert nhi == GRANTED + timedelta(days=90)


def test_record_values_win_over_policy_and_last_decision_restarts_the_cycle() -> None:
    own_due = datetime(2026, 2, 1, tzinfo=UTC)
    assert (
        POLICY.due_at(
            kind=IdentityKind.HUMAN, own_interval=None, own_due_at=own_due, last_recertified_at=None, granted_at=GRANTED
        )
        == own_due
    )
    recertified = datetime(2026, 3, 1, tzinfo=UTC)
    assert POLICY.due_at(
        kind=IdentityKind.HUMAN,
        own_interval=timedelta(days=30),
        own_due_at=None,
        last_recertified_at=recertified,
        granted_at=GRANTED,
    ) == recertified + timedelta(days=30)


def test_not_required_without_interval_or_base() -> None:
    policy = RecertPolicy(
        interval_human=None,
        interval_nhi=timedelta(days=90),
        due_lead=timedelta(days=14),
        overdue_grace=timedelta(0),
        revoke_after=None,
    )
    assert (
        policy.due_at(
            kind=IdentityKind.HUMAN, own_interval=None, own_due_at=None, last_recertified_at=None, granted_at=GRANTED
        )
        is None
    )
    assert (
        policy.due_at(
            kind=IdentityKind.BOT, own_interval=None, own_due_at=None, last_recertified_at=None, granted_at=None
        )
        is None
    )


def test_stages_in_order_each_once() -> None:
    due = datetime(2026, 7, 1, tzinfo=UTC)
    assert POLICY.stage_to_announce(due, due - timedelta(days=15), set()) == (None, [])
    assert POLICY.stage_to_announce(due, due - timedelta(days=14), set()) == (RecertStage.DUE, [])
    assert POLICY.stage_to_announce(due, due, {RecertStage.DUE}) == (None, [])
    assert POLICY.stage_to_announce(due, due + timedelta(days=1), {RecertStage.DUE}) == (RecertStage.OVERDUE, [])
    assert POLICY.stage_to_announce(due, due + timedelta(days=30), {RecertStage.DUE, RecertStage.OVERDUE}) == (
        RecertStage.REVOKE,
        [],
    )


def test_catch_up_announces_the_latest_stage_only() -> None:
    due = datetime(2026, 7, 1, tzinfo=UTC)
    stage, superseded = POLICY.stage_to_announce(due, due + timedelta(days=2), set())
    assert stage is RecertStage.OVERDUE
    assert superseded == [RecertStage.DUE]


def test_no_revoke_stage_without_revoke_policy() -> None:
    policy = RecertPolicy(
        interval_human=timedelta(days=180),
        interval_nhi=None,
        due_lead=timedelta(days=14),
        overdue_grace=timedelta(0),
        revoke_after=None,
    )
    due = datetime(2026, 7, 1, tzinfo=UTC)
    assert policy.stages_reached(due, due + timedelta(days=365)) == [RecertStage.DUE, RecertStage.OVERDUE]
