"""A stalled input through Kafka: findings about something missing are held, one INPUT_STALLED names the
stream and its lag, and when the stream resumes the held finding opens and INPUT_STALLED closes."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from closeloop.contracts.alerts import AlertActivity, DriftAlert, DriftRule
from closeloop.kafka import producer
from closeloop.progress_beacon import ProgressBeacon
from closeloop.settings import KafkaSettings
from tests.integration.reconciliation.support import (
    PROGRESS_INTERVAL_S,
    in_process,
    read_alerts,
    reconciler_settings,
    running_inputs,
)
from tests.unit.reconciliation.scenarios import GRANTS, grant, key

pytestmark = pytest.mark.integration


async def wait_for(kafka: KafkaSettings, topic: str, wanted: list[tuple[DriftRule, AlertActivity]]) -> list[DriftAlert]:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        alerts = (await read_alerts(kafka, topic, timeout_s=1)).alerts
        seen = [(a.rule, a.activity) for a in alerts]
        if all(w in seen for w in wanted):
            return alerts
    raise AssertionError(f"not seen in time: {wanted}; saw {seen}")


async def test_stalled_tickets_hold_unticketed_grants_and_raise_input_stalled_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = reconciler_settings(tmp_path, input_stall_limit=timedelta(seconds=3), input_watch_interval_s=0.5)
    k = key("okta:user:stall.1@example.com", f"okta:group:00gstall{int(time.time())}", "member")
    async with (
        in_process(kafka_settings, settings),
        running_inputs(kafka_settings, settings, progress=(GRANTS,)) as inputs,
    ):
        await inputs.send(GRANTS, grant(k, datetime.now(UTC)))
        stalled = await wait_for(
            kafka_settings, settings.alerts_topic, [(DriftRule.INPUT_STALLED, AlertActivity.CREATE)]
        )
        # Grace (2 s) is long over: without the stall the grant would have its UNTICKETED_GRANT by now.
        await asyncio.sleep(2)
        alerts = (await read_alerts(kafka_settings, settings.alerts_topic, timeout_s=1)).alerts
        assert [a.rule for a in alerts] == [DriftRule.INPUT_STALLED]
        assert settings.tickets_topic in stalled[0].entitlement_key

        # request-intake comes back: its progress releases the held finding and ends the stall.
        client = producer(kafka_settings)
        await client.start()
        beacon = ProgressBeacon(
            client, settings.tickets_topic, "test-tickets@back", "closeloop/test", interval_s=PROGRESS_INTERVAL_S
        )
        task = asyncio.create_task(beacon.run())
        try:
            alerts = await wait_for(
                kafka_settings,
                settings.alerts_topic,
                [(DriftRule.UNTICKETED_GRANT, AlertActivity.CREATE), (DriftRule.INPUT_STALLED, AlertActivity.CLOSE)],
            )
        finally:
            beacon.stop()
            await task
            await client.stop()
    by_rule = sorted((a.rule.value, a.activity.name) for a in alerts)
    assert by_rule == [("INPUT_STALLED", "CLOSE"), ("INPUT_STALLED", "CREATE"), ("UNTICKETED_GRANT", "CREATE")]
    created = next(a for a in alerts if a.rule is DriftRule.INPUT_STALLED)
    assert "stalled" in created.message
