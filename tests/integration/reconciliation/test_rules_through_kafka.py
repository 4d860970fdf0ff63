"""Done-criterion: for each rule, a scenario through Kafka produces exactly the expected alert, and a matching
benign scenario produces none. All 26 scenarios run through one reconciler on unique topics."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from closeloop.contracts.alerts import AlertActivity, AlertStatus, DriftRule
from closeloop.settings import KafkaSettings
from reconciliation.ocsf_schema import validate_detection_finding
from tests.unit.reconciliation.scenarios import SCENARIOS, Scenario

from .support import Alerts, in_process, read_alerts, reconciler_settings, running_inputs

pytestmark = pytest.mark.integration


@dataclass
class Run:
    scenarios: dict[tuple[DriftRule, bool], Scenario]
    alerts: Alerts
    version: str


@pytest.fixture(scope="module")
async def run(kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Run:
    settings = reconciler_settings(tmp_path_factory.mktemp("rc-rules"))
    async with in_process(kafka_settings, settings), running_inputs(kafka_settings, settings) as inputs:
        base = datetime.now(UTC)
        run_tag = int(time.time()) % 100000
        scenarios = {
            (rule, benign): build(base, f"{rule.value[:4].lower()}{'b' if benign else 'd'}{run_tag}", benign)
            for rule, build in SCENARIOS.items()
            for benign in (False, True)
        }
        for scenario in scenarios.values():
            await inputs.send_all(scenario.inputs)
        # Grace windows are 2 s; the timer ticks every 0.5 s. Wait until every drift scenario has its alert,
        # then a little longer so a wrongly raised alert would have shown up too.
        expected = sum(1 for (_, benign) in scenarios if not benign)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen = await read_alerts(kafka_settings, settings.alerts_topic, timeout_s=1)
            if len({(a.entitlement_key, a.rule) for a in seen.alerts}) >= expected:
                break
        await asyncio.sleep(3)
        alerts = await read_alerts(kafka_settings, settings.alerts_topic, timeout_s=2)
    return Run(scenarios, alerts, settings.ocsf_version)


@pytest.mark.parametrize("rule", list(SCENARIOS))
def test_drift_scenario_produces_exactly_its_alert(run: Run, rule: DriftRule) -> None:
    scenario = run.scenarios[(rule, False)]
    about = run.alerts.about(scenario.subject)
    assert [(a.rule, a.activity, a.status, a.revision) for a in about] == [
        (rule, AlertActivity.CREATE, AlertStatus.NEW, 1)
    ]
    record = next(r for r in run.alerts.records if r.key == scenario.subject.encode())
    document = json.loads(record.value)
    assert validate_detection_finding(document, run.version) == []
    headers = dict(record.headers)
    assert headers["ce_id"].decode() == about[0].event_id == document["metadata"]["uid"]
    assert headers["ce_subject"].decode() == scenario.subject
    assert headers["ce_rule"].decode() == rule.value


@pytest.mark.parametrize("rule", list(SCENARIOS))
def test_benign_scenario_produces_no_alert(run: Run, rule: DriftRule) -> None:
    scenario = run.scenarios[(rule, True)]
    keys = {str(getattr(event, "key", "") or "") for _, event in scenario.inputs} | {scenario.subject}
    assert [a for a in run.alerts.alerts if a.entitlement_key in keys] == []
