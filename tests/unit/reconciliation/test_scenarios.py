"""Every rule: its drift scenario raises exactly that alert; its benign twin raises nothing (pure join, no Kafka)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.contracts.alerts import AlertActivity, DriftRule
from tests.unit.reconciliation.harness import Harness, activities
from tests.unit.reconciliation.scenarios import SCENARIOS

BASE = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("rule", list(DriftRule))
def test_drift_scenario_raises_exactly_its_alert(rule: DriftRule) -> None:
    scenario = SCENARIOS[rule](BASE, "t1", False)
    harness = Harness()
    emissions = harness.play(scenario, BASE)
    assert activities(emissions) == [(rule, AlertActivity.CREATE)]
    assert emissions[0].change.key == scenario.subject
    assert harness.open_alerts() == {(scenario.subject, rule)}


@pytest.mark.parametrize("rule", list(DriftRule))
def test_benign_twin_raises_nothing(rule: DriftRule) -> None:
    scenario = SCENARIOS[rule](BASE, "t1", True)
    harness = Harness()
    assert activities(harness.play(scenario, BASE)) == []
    assert harness.open_alerts() == set()


def test_replaying_a_scenario_changes_nothing() -> None:
    """At-least-once delivery: every input seen twice yields no second alert."""
    scenario = SCENARIOS[DriftRule.CLOSED_NOT_REMOVED](BASE, "dup", False)
    harness = Harness()
    harness.play(scenario, BASE)
    before = list(harness.emitted)
    for _, event in scenario.inputs:
        harness.feed(event, BASE + scenario.settle)
    harness.tick(BASE + scenario.settle)
    assert harness.emitted == before
