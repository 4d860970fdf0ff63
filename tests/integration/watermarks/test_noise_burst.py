"""Done-criterion (short profile; `make bench` runs 10,000 pairs with a 60 s pause): a burst of benign pairs
through request-intake and the connectors, grants first, request-intake paused mid-burst and the reconciler
restarted during the pause, creates no alert; the drift mixed in raises exactly its alerts, none closed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from bench.noise_burst import BurstPlan, run_burst

from closeloop.contracts.alerts import DriftRule
from closeloop.settings import DatabaseSettings, KafkaSettings

pytestmark = pytest.mark.integration


async def test_burst_with_paused_intake_and_restarted_reconciler_raises_exactly_the_drift(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, tmp_path: Path
) -> None:
    window = timedelta(seconds=6)
    plan = BurstPlan(pairs=300, drift=5, pause_s=15.0, grace=window, itsm_allowance=window)
    result = await run_burst(plan, kafka_settings, database_settings, tmp_path, settle_timeout_s=120)
    # The scenario holds only if the tickets reached the raw topic within grace + allowance of their time.
    assert result.delivery_delay_s < (plan.grace + plan.itsm_allowance).total_seconds()
    assert result.false_creates == []
    assert {(a.entitlement_key, a.rule) for a in result.creates} == result.expected
    assert len(result.creates) == len(result.expected)  # each once, across the restart
    assert result.closes == []
    assert not [a for a in result.alerts if a.rule is DriftRule.INPUT_STALLED]
    assert len(result.latencies_s) == len(result.expected)
