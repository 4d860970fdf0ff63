"""Two reconciler workers in one group: a worker joining and another leaving mid-stream (two rebalances)
loses no alert and publishes none twice; the timers of both workers only act on their own partitions."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from closeloop.contracts.alerts import AlertActivity
from closeloop.settings import KafkaSettings
from tests.unit.reconciliation.scenarios import GRANTS, grant, key

from .support import Subprocess, read_alerts, reconciler_settings, running_inputs
from .test_kill_restart import _wait_for_alerts

pytestmark = pytest.mark.integration

TOTAL = 240


async def test_workers_joining_and_leaving_mid_stream_keep_every_alert_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = reconciler_settings(tmp_path, grant_before_approval_grace=timedelta(seconds=1))
    first = Subprocess(kafka_settings, settings, tmp_path / "first.log")
    second = Subprocess(kafka_settings, settings, tmp_path / "second.log")
    second.env["CLOSELOOP_RECONCILIATION_DATA_DIR"] = str(tmp_path / "second")
    keys = [
        key(f"okta:user:r{i}.{settings.app_id[-8:]}@example.com", "okta:group:00greb", "member") for i in range(TOTAL)
    ]
    first.start()
    try:
        await first.wait_ready()
        async with running_inputs(kafka_settings, settings) as inputs:

            async def stream() -> None:
                for k in keys:
                    await inputs.send(GRANTS, grant(k, datetime.now(UTC)))
                    await asyncio.sleep(0.02)

            producing = asyncio.create_task(stream())
            await _wait_for_alerts(kafka_settings, settings.alerts_topic, at_least=20)
            second.start()  # joins the group: partitions move to it
            await second.wait_ready()
            await _wait_for_alerts(kafka_settings, settings.alerts_topic, at_least=120, timeout_s=60)
            assert first.terminate() == 0  # leaves the group: the second worker takes everything
            await producing
            await _wait_for_alerts(kafka_settings, settings.alerts_topic, at_least=TOTAL, timeout_s=60)
            await asyncio.sleep(3)
        records = (await read_alerts(kafka_settings, settings.alerts_topic, timeout_s=3)).records
    finally:
        for worker in (first, second):
            if worker.process is not None and worker.process.poll() is None:
                worker.terminate()
    ids = Counter(dict(r.headers)["ce_id"].decode() for r in records)
    assert [i for i, n in ids.items() if n > 1] == []
    documents = [json.loads(r.value) for r in records]
    creates = Counter(
        d["unmapped"]["closeloop"]["entitlement_key"] for d in documents if d["activity_id"] == AlertActivity.CREATE
    )
    assert set(creates) == {str(k) for k in keys}
    assert set(creates.values()) == {1}
    assert len(documents) == TOTAL
    assert "deadline index rebuilt" in (tmp_path / "second.log").read_text()
