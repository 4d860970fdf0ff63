"""Done-criterion of correlation, through Kafka: tickets naming people by email and resources by display name,
`org/repo` or `<type>:<name>` produce exactly the alerts of the same tickets written with canonical ids, for every
rule and on each of the six systems; the benign twins produce none. One reconciler runs both forms at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from closeloop.contracts.alerts import DriftAlert, DriftRule
from closeloop.settings import KafkaSettings
from tests.unit.reconciliation.people import (
    SYSTEM_STORIES,
    alias_story,
    as_people_write_it,
    late_binding_story,
    offboarding_story,
)
from tests.unit.reconciliation.scenarios import SCENARIOS, Scenario

from .support import in_process, read_alerts, reconciler_settings, running_inputs

pytestmark = pytest.mark.integration

ID_RULES = [r for r in SCENARIOS if r not in (DriftRule.UNRESOLVED_REFERENCE, DriftRule.AMBIGUOUS_REFERENCE)]


def system_story(system: str, name: str) -> Callable[[datetime, str, bool], Scenario]:
    def build(base: datetime, tag: str, benign: bool) -> Scenario:
        return SYSTEM_STORIES[(system, name)](system, base, tag, benign)

    return build


STORIES: dict[str, Callable[[datetime, str, bool], Scenario]] = {
    **{rule.value: SCENARIOS[rule] for rule in ID_RULES},
    **{f"{system}-{name}": system_story(system, name) for system, name in SYSTEM_STORIES},
}


CORRELATION_STORIES = {"alias": alias_story, "offboarding": offboarding_story, "late_binding": late_binding_story}


@dataclass
class Run:
    tags: dict[tuple[str, str, bool], str]
    alerts: list[DriftAlert]
    stories: dict[str, tuple[str, set[tuple[str, DriftRule]]]]

    def about(self, story: str, form: str, benign: bool) -> list[tuple[str, str, int, int]]:
        """What was raised about a story's keys, with its tag masked so both forms compare."""
        tag = self.tags[(story, form, benign)]
        return sorted(
            (a.entitlement_key.replace(tag, "<tag>"), a.rule.value, int(a.activity), a.revision)
            for a in self.alerts
            if tag in a.entitlement_key
        )


@pytest.fixture(scope="module")
async def run(kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Run:
    settings = reconciler_settings(tmp_path_factory.mktemp("rc-people"))
    base = datetime.now(UTC)
    stamp = int(time.time()) % 100000
    tags: dict[tuple[str, str, bool], str] = {}
    scenarios: list[Scenario] = []
    for number, (story, build) in enumerate(sorted(STORIES.items())):
        for benign in (False, True):
            for form in ("id", "name"):
                tag = f"p{number}{form[0]}{'b' if benign else 'd'}x{stamp}"
                tags[(story, form, benign)] = tag
                scenario = build(base, tag, benign)
                scenarios.append(as_people_write_it(scenario, base) if form == "name" else scenario)
    stories: dict[str, tuple[str, set[tuple[str, DriftRule]]]] = {}
    async with in_process(kafka_settings, settings), running_inputs(kafka_settings, settings) as inputs:
        for scenario in scenarios:
            await inputs.send_all(scenario.inputs)
        for name, correlation_story in CORRELATION_STORIES.items():
            tag = f"{name[:3]}x{stamp}"
            story_inputs, story_expected = correlation_story(base, tag)
            stories[name] = (tag, story_expected)
            await inputs.send_all(story_inputs)
        expected = sum(1 for s in scenarios if s.expected is not None) + sum(len(e) for _, e in stories.values())
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            seen = await read_alerts(kafka_settings, settings.alerts_topic, timeout_s=1)
            if len({(a.entitlement_key, a.rule) for a in seen.alerts}) >= expected:
                break
        await asyncio.sleep(3)  # long enough for a wrongly raised alert to show up too
        alerts = await read_alerts(kafka_settings, settings.alerts_topic, timeout_s=2)
    return Run(tags, alerts.alerts, stories)


@pytest.mark.parametrize("story", sorted(STORIES))
def test_name_form_alerts_equal_id_form_alerts(run: Run, story: str) -> None:
    by_id = run.about(story, "id", False)
    assert by_id, "the drift story must raise its alert"
    assert run.about(story, "name", False) == by_id


@pytest.mark.parametrize("story", sorted(STORIES))
def test_benign_twins_raise_nothing_in_either_form(run: Run, story: str) -> None:
    assert run.about(story, "id", True) == []
    assert run.about(story, "name", True) == []


@pytest.mark.parametrize("story", sorted(CORRELATION_STORIES))
def test_correlation_stories(run: Run, story: str) -> None:
    """Operator alias (SCOPE_EXCEEDS only), offboarding by email (every linked account), late binding (nothing)."""
    tag, expected = run.stories[story]
    raised = {(a.entitlement_key, a.rule) for a in run.alerts if tag in a.entitlement_key}
    assert raised == expected
