"""Alert lifecycle: one finding per (key, rule) — Create, Update on new evidence, Close, reopen; stable ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from closeloop.contracts.alerts import AlertActivity, AlertStatus, DriftRule, alert_event_id, finding_uid
from closeloop.contracts.grants import GrantAction
from closeloop.contracts.tickets import TicketTransition
from reconciliation.lifecycle import decide
from reconciliation.rules.base import Evidence, RuleResult
from tests.unit.reconciliation.harness import Harness, activities, fold, view_of
from tests.unit.reconciliation.scenarios import GRACE, grant, key, ticket

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
K = key("okta:user:bob@example.com", "okta:group:00gops", "member")
RULE = DriftRule.UNTICKETED_GRANT


def test_create_update_close_and_reopen_with_deterministic_ids() -> None:
    view = view_of(fold([grant(K, T0)], T0), K)
    evidence = Evidence(message="m", facts=(("a", "1"),))
    first, created = decide(None, RuleResult(RULE, evidence), view, T0)
    assert created is not None
    assert first is not None
    assert (created.activity, created.status, created.revision) == (AlertActivity.CREATE, AlertStatus.NEW, 1)
    assert created.uid == finding_uid(str(K), RULE)
    assert created.event_id == alert_event_id(created.uid, AlertActivity.CREATE, 1)

    same, nothing = decide(first, RuleResult(RULE, evidence), view, T0 + timedelta(seconds=1))
    assert (same, nothing) == (None, None)

    newer = Evidence(message="m", facts=(("a", "2"),))
    second, updated = decide(first, RuleResult(RULE, newer), view, T0 + timedelta(seconds=2))
    assert updated is not None
    assert second is not None
    assert (updated.activity, updated.revision, updated.uid) == (AlertActivity.UPDATE, 2, created.uid)

    third, closed = decide(second, RuleResult(RULE), view, T0 + timedelta(seconds=3))
    assert closed is not None
    assert third is not None
    assert (closed.activity, closed.status, closed.revision) == (AlertActivity.CLOSE, AlertStatus.RESOLVED, 3)
    assert closed.closed_at == T0 + timedelta(seconds=3)

    assert decide(third, RuleResult(RULE), view, T0 + timedelta(seconds=4)) == (None, None)

    _, reopened = decide(third, RuleResult(RULE, evidence), view, T0 + timedelta(seconds=5))
    assert reopened is not None
    assert (reopened.activity, reopened.status, reopened.revision, reopened.reopened) == (
        AlertActivity.UPDATE,
        AlertStatus.NEW,
        4,
        True,
    )
    assert reopened.first_opened_at == T0
    assert reopened.opened_at == T0 + timedelta(seconds=5)
    assert len({created.event_id, updated.event_id, closed.event_id, reopened.event_id}) == 4


def test_ids_differ_per_key_and_rule() -> None:
    other = key("okta:user:bob@example.com", "okta:group:00gops", "admin")
    uids = {finding_uid(str(k), r) for k in (K, other) for r in (RULE, DriftRule.NO_OWNER)}
    assert len(uids) == 4


def test_through_the_engine_a_new_grant_event_updates_and_a_revoke_closes() -> None:
    harness = Harness()
    harness.feed(grant(K, T0), T0)
    harness.tick(T0 + GRACE + timedelta(seconds=1))
    harness.feed(grant(K, T0 + timedelta(minutes=1), action=GrantAction.REVOKE), T0 + timedelta(minutes=1))
    harness.feed(grant(K, T0 + timedelta(minutes=2)), T0 + timedelta(minutes=2))
    harness.tick(T0 + timedelta(minutes=3))
    assert activities(harness.emitted) == [
        (RULE, AlertActivity.CREATE),
        (RULE, AlertActivity.CLOSE),
        (RULE, AlertActivity.UPDATE),
    ]
    assert [e.change.revision for e in harness.emitted] == [1, 2, 3]
    assert harness.emitted[2].change.reopened


def test_findings_open_only_after_the_settle_window_updates_and_closes_do_not_wait() -> None:
    harness = Harness()
    harness.feed(grant(K, T0 - timedelta(hours=1)), T0)  # old grant: grace already over, but settle applies
    assert harness.emitted == []
    assert harness.state(str(K)).next_check == T0 + timedelta(milliseconds=300)
    harness.tick(T0 + timedelta(milliseconds=300))
    assert activities(harness.emitted) == [(RULE, AlertActivity.CREATE)]
    harness.feed(ticket(K, TicketTransition.APPROVED, T0, ticket_id="t-1"), T0 + timedelta(seconds=1))
    assert activities(harness.emitted)[-1] == (RULE, AlertActivity.CLOSE)
