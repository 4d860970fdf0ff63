"""Every rule: its drift scenario raises exactly that alert; its benign twin raises nothing (pure join, no Kafka)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from closeloop.contracts.alerts import AlertActivity, DriftRule
from reconciliation.join_engine import JoinInput
from tests.unit.reconciliation.harness import PARTITIONS, Harness, activities
from tests.unit.reconciliation.scenarios import SCENARIOS
from tests.unit.reconciliation.snapshot_story import snapshot_story

BASE = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("rule", list(SCENARIOS))
def test_drift_scenario_raises_exactly_its_alert(rule: DriftRule) -> None:
    scenario = SCENARIOS[rule](BASE, "t1", False)
    harness = Harness()
    emissions = harness.play(scenario, BASE)
    assert activities(emissions) == [(rule, AlertActivity.CREATE)]
    assert emissions[0].change.key == scenario.subject
    assert harness.open_alerts() == {(scenario.subject, rule)}


@pytest.mark.parametrize("rule", list(SCENARIOS))
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


def test_snapshot_sweep_marks_unlisted_entitlements_gone_and_raises_on_unticketed_listings() -> None:
    story = snapshot_story(BASE, "u1")
    harness = Harness()
    for _, event in story.before:
        harness.feed(event, BASE)
    harness.tick(BASE + timedelta(seconds=1))
    assert len(harness.emitted) == story.before_alerts
    for _, event in story.snapshot:
        harness.feed(event, BASE + timedelta(seconds=1))
    harness.tick(BASE + timedelta(seconds=10))
    got = {(e.change.key, e.change.rule, e.change.activity) for e in harness.emitted}
    assert got == story.expected
    assert len(harness.emitted) == len(story.expected)


def test_snapshot_sweep_waits_for_the_completed_marker_of_every_grants_partition() -> None:
    story = snapshot_story(BASE, "u2")
    harness = Harness()
    for _, event in story.before:
        harness.feed(event, BASE)
    completed = story.snapshot[-1][1]
    for _, event in story.snapshot[:-1]:
        harness.feed(event, BASE + timedelta(seconds=1))
    # Only two of the three input partitions' completion markers reached partition 0..2: no sweep yet.
    for partition in range(PARTITIONS):
        for origin in range(PARTITIONS - 1):
            harness._run(
                JoinInput("marker", partition, completed, origin_partition=origin), BASE + timedelta(seconds=2)
            )
    harness.tick(BASE + timedelta(seconds=10))
    assert not any(e.change.activity == AlertActivity.CLOSE for e in harness.emitted)
    for partition in range(PARTITIONS):
        harness._run(
            JoinInput("marker", partition, completed, origin_partition=PARTITIONS - 1), BASE + timedelta(seconds=11)
        )
    closes = {(e.change.key, e.change.rule) for e in harness.emitted if e.change.activity == AlertActivity.CLOSE}
    assert len(closes) == 2
