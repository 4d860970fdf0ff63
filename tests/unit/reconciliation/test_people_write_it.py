"""Tickets naming people by email and resources by display name, `org/repo` or `<type>:<name>` produce exactly
the alerts of the same tickets written with canonical ids (pure join; the Kafka suite runs the same stories)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from closeloop.contracts.alerts import AlertActivity, DriftRule
from closeloop.contracts.base import Envelope
from closeloop.contracts.tickets import TicketEvent, TicketTransition
from tests.unit.reconciliation.harness import Harness, activities
from tests.unit.reconciliation.people import (
    SYSTEM_STORIES,
    alias_story,
    as_people_write_it,
    late_binding_story,
    offboarding_story,
)
from tests.unit.reconciliation.scenarios import SCENARIOS, Scenario, as_written, catalogued, grant, key, ticket

BASE = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ID_RULES = [r for r in SCENARIOS if r not in (DriftRule.UNRESOLVED_REFERENCE, DriftRule.AMBIGUOUS_REFERENCE)]


def outcome(scenario: Scenario) -> tuple[list[tuple[DriftRule, AlertActivity]], set[tuple[str, DriftRule]]]:
    harness = Harness()
    emissions = harness.play(scenario, BASE)
    return activities(emissions), harness.open_alerts()


def untagged(alerts: set[tuple[str, DriftRule]], tag: str) -> set[tuple[str, DriftRule]]:
    return {(k.replace(tag, "<tag>"), rule) for k, rule in alerts}


@pytest.mark.parametrize("benign", [False, True])
@pytest.mark.parametrize("rule", ID_RULES)
def test_name_form_raises_what_the_id_form_raises(rule: DriftRule, benign: bool) -> None:
    by_id = SCENARIOS[rule](BASE, "idf", benign)
    by_name = as_people_write_it(SCENARIOS[rule](BASE, "nmf", benign), BASE)
    assert any(isinstance(e, TicketEvent) and e.references for _, e in by_name.inputs) or not any(
        isinstance(e, TicketEvent) and e.entitlement for _, e in by_id.inputs
    )
    id_activities, id_open = outcome(by_id)
    name_activities, name_open = outcome(by_name)
    assert name_activities == id_activities
    assert untagged(name_open, "nmf") == untagged(id_open, "idf")
    assert (id_activities == []) is benign


@pytest.mark.parametrize(("system", "story"), sorted(SYSTEM_STORIES))
@pytest.mark.parametrize("benign", [False, True])
def test_six_systems_name_form_equals_id_form(system: str, story: str, benign: bool) -> None:
    build = SYSTEM_STORIES[(system, story)]
    id_activities, id_open = outcome(build(system, BASE, "idf", benign))
    name_activities, name_open = outcome(as_people_write_it(build(system, BASE, "nmf", benign), BASE))
    assert name_activities == id_activities
    assert untagged(name_open, "nmf") == untagged(id_open, "idf")
    assert bool(id_open) is not benign


@pytest.mark.parametrize("story", [alias_story, offboarding_story, late_binding_story])
def test_correlation_stories(story: Callable[[datetime, str], tuple[list[tuple[str, Envelope]], set[Any]]]) -> None:
    inputs, expected = story(BASE, "st")
    harness = Harness()
    for _, event in inputs:
        harness.feed(event, max(BASE, event.occurred_at))
    for _ in range(3):
        harness.tick(BASE + timedelta(seconds=10))
    assert harness.open_alerts() == expected


def test_unknown_and_ambiguous_names_never_bind_to_a_guess() -> None:
    harness = Harness()
    for resource in ("okta:group:00ga", "okta:group:00gb"):
        harness.feed(catalogued(resource, BASE, "Ops"), BASE)
    approved = ticket(
        key("okta:user:c@example.com", "okta:group:00ga", "member"), TicketTransition.APPROVED, BASE, ticket_id="amb"
    )
    harness.feed(as_written(approved, "okta:user:c@example.com", "okta:group:Ops", "c@example.com", "Ops"), BASE)
    harness.feed(grant(key("okta:user:c@example.com", "okta:group:00ga", "member"), BASE), BASE)
    for _ in range(3):
        harness.tick(BASE + timedelta(seconds=10))
    assert harness.open_alerts() == {
        ("okta:user:c@example.com|okta:group:Ops|member", DriftRule.AMBIGUOUS_REFERENCE),
        ("okta:user:c@example.com|okta:group:00ga|member", DriftRule.UNTICKETED_GRANT),
    }
