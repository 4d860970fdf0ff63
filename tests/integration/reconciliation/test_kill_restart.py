"""Done-criterion: killing (SIGKILL) and restarting the reconciler mid-stream loses and duplicates nothing.

The reconciler runs as `python -m reconciliation` (the real entry point, with its ops server). Grants stream in
while it is killed and restarted; every unticketed grant must end up with exactly one Create, no alert record
may be published twice, and the alert state must have survived (a later revoke closes the same finding with
the next revision instead of finding nothing to close).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from closeloop.contracts.alerts import AlertActivity, DriftRule
from closeloop.contracts.grants import GrantAction
from closeloop.settings import KafkaSettings
from tests.unit.reconciliation.scenarios import GRANTS, grant, key

from .support import Subprocess, read_alerts, reconciler_settings, running_inputs

pytestmark = pytest.mark.integration

GRANTS_TOTAL = 300
REVOKED = 20


async def test_kill_and_restart_loses_and_duplicates_nothing(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    settings = reconciler_settings(tmp_path, grant_before_approval_grace=timedelta(milliseconds=500))
    service = Subprocess(kafka_settings, settings, tmp_path / "reconciler.log")
    service.start()
    try:
        await service.wait_ready()
        url = f"http://127.0.0.1:{service.port}/healthz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            assert (await response.json())["service"] == "reconciliation"

        keys = [
            key(f"okta:user:k{i}.{settings.app_id[-10:]}@example.com", "okta:group:00gkill", "member")
            for i in range(GRANTS_TOTAL)
        ]
        async with running_inputs(kafka_settings, settings) as inputs:

            async def stream() -> None:
                for k in keys:
                    await inputs.send(GRANTS, grant(k, datetime.now(UTC)))
                    await asyncio.sleep(0.01)

            producer_task = asyncio.create_task(stream())
            # Kill once alerts are flowing, in the middle of the stream.
            await _wait_for_alerts(kafka_settings, settings.alerts_topic, at_least=40)
            service.kill()
            await asyncio.sleep(1)
            service.start()
            await producer_task
            await service.wait_ready()
            await _wait_for_alerts(kafka_settings, settings.alerts_topic, at_least=GRANTS_TOTAL, timeout_s=60)

            # The alert state survived the kill: revoking closes the same findings (revision 2).
            for k in keys[:REVOKED]:
                await inputs.send(GRANTS, grant(k, datetime.now(UTC), action=GrantAction.REVOKE))
            await _wait_for_alerts(kafka_settings, settings.alerts_topic, at_least=GRANTS_TOTAL + REVOKED, timeout_s=30)
            await asyncio.sleep(2)  # anything wrongly re-sent after the restart would show up by now

        url = f"http://127.0.0.1:{service.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/readyz") as ready:
                assert ready.status == 200
            async with session.get(f"{url}/metrics") as response:
                metrics = await response.text()
        assert 'closeloop_reconciliation_alerts_total{activity="close",rule="UNTICKETED_GRANT"} 20.0' in metrics
        assert "closeloop_events_in_total" in metrics

        records = (await read_alerts(kafka_settings, settings.alerts_topic, timeout_s=3)).records
        ids = [dict(r.headers)["ce_id"].decode() for r in records]
        assert [i for i, n in Counter(ids).items() if n > 1] == []  # no record published twice
        documents = [json.loads(r.value) for r in records]
        creates = Counter(
            d["unmapped"]["closeloop"]["entitlement_key"] for d in documents if d["activity_id"] == AlertActivity.CREATE
        )
        assert set(creates) == {str(k) for k in keys}  # nothing lost
        assert set(creates.values()) == {1}  # nothing duplicated
        assert {d["unmapped"]["closeloop"]["rule"] for d in documents} == {DriftRule.UNTICKETED_GRANT.value}
        closes = [d for d in documents if d["activity_id"] == AlertActivity.CLOSE]
        assert sorted(d["unmapped"]["closeloop"]["entitlement_key"] for d in closes) == sorted(
            str(k) for k in keys[:REVOKED]
        )
        assert {d["unmapped"]["closeloop"]["revision"] for d in closes} == {2}
        assert len(documents) == GRANTS_TOTAL + REVOKED
    finally:
        if service.process is not None and service.process.poll() is None:
            assert service.terminate() == 0


async def _wait_for_alerts(kafka: KafkaSettings, topic: str, at_least: int, timeout_s: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        found = await read_alerts(kafka, topic, until_count=at_least, timeout_s=max(deadline - loop.time(), 0.5))
        if len(found.records) >= at_least:
            return
    raise AssertionError(f"fewer than {at_least} alerts on {topic} after {timeout_s}s")
