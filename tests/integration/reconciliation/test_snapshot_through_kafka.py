"""Snapshot sweep through Kafka: markers on every partition of the grants topic, a full listing in between."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from closeloop.settings import KafkaSettings
from tests.unit.reconciliation.snapshot_story import snapshot_story

from .support import in_process, read_alerts, reconciler_settings, running_inputs

pytestmark = pytest.mark.integration


async def test_snapshot_end_sweeps_unlisted_and_flags_unticketed_listings(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = reconciler_settings(tmp_path)
    async with in_process(kafka_settings, settings), running_inputs(kafka_settings, settings) as inputs:
        story = snapshot_story(datetime.now(UTC), settings.app_id[-10:])
        await inputs.send_all(story.before)
        before = await read_alerts(kafka_settings, settings.alerts_topic, until_count=story.before_alerts)
        assert len(before.records) == story.before_alerts
        await inputs.send_all(story.snapshot)
        after = await read_alerts(kafka_settings, settings.alerts_topic, until_count=len(story.expected))
        await asyncio.sleep(2)  # nothing more may follow
        final = await read_alerts(kafka_settings, settings.alerts_topic, timeout_s=2)
    assert len(after.records) >= len(story.expected)
    got = [(a.entitlement_key, a.rule, a.activity) for a in final.alerts]
    assert sorted(got) == sorted(story.expected)
