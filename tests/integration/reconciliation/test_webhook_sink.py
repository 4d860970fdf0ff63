"""SOC webhook sink against a local HTTP endpoint: Standard Webhooks signatures, retries, dead letters."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from closeloop.contracts.alerts import DriftRule
from closeloop.metrics import ServiceMetrics
from closeloop.ops import HttpServer
from closeloop.settings import KafkaSettings
from closeloop.topics import TopicSpec, dlq, ensure_topics
from reconciliation.sinks.alert_record import AlertEncoder, AlertRecord
from reconciliation.sinks.webhook import build_webhook_sink
from tests.support.kafka_helpers import read_topic
from tests.unit.reconciliation.harness import Harness
from tests.unit.reconciliation.scenarios import SCENARIOS

from .support import reconciler_settings, running_inputs

pytestmark = pytest.mark.integration


@dataclass
class Endpoint:
    """Answers each webhook-id with the next status of its script (then 200), and keeps what it received."""

    scripts: dict[str, list[int]] = field(default_factory=dict)
    received: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        message_id = request.headers.get("webhook-id", "")
        script = self.scripts.get(message_id, [])
        status = script.pop(0) if script else 200
        self.received.append((dict(request.headers), body, status))
        return web.Response(status=status)


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[Endpoint, str]]:
    target = Endpoint()
    app = web.Application()
    app.router.add_post("/soc", target.handle)
    server = HttpServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        yield target, f"http://127.0.0.1:{server.port}/soc"
    finally:
        await server.stop()


def alert_records(count: int) -> list[AlertRecord]:
    base = datetime.now(UTC)
    encoder = AlertEncoder(ocsf_version="1.7.0", source="closeloop/reconciliation", log_name="alerts", data_sources=())
    records = []
    for index, rule in enumerate(list(DriftRule)[:count]):
        harness = Harness()
        emissions = harness.play(SCENARIOS[rule](base, f"wh{index}", False), base)
        records.append(encoder.encode(emissions[0]))
    return records


async def test_alerts_are_signed_retried_and_dead_lettered(
    kafka_settings: KafkaSettings, tmp_path: Path, endpoint: tuple[Endpoint, str]
) -> None:
    target, url = endpoint
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    settings = reconciler_settings(
        tmp_path,
        webhook_url=url,
        webhook_secret=secret,
        webhook_group_id=f"{tmp_path.name}-webhook",
        webhook_max_attempts=3,
        webhook_max_backoff_s=0.5,
    )
    await ensure_topics(
        kafka_settings,
        [TopicSpec(settings.alerts_topic, retention_ms=3600_000), TopicSpec(dlq(settings.alerts_topic), 3600_000)],
    )
    flaky, refused, fine = alert_records(3)
    target.scripts[flaky.event_id] = [503]  # accepted on the second attempt
    target.scripts[refused.event_id] = [400]  # permanent: dead-lettered without retries

    sink = await build_webhook_sink(settings, kafka_settings, ServiceMetrics("reconciliation"))
    runner = asyncio.create_task(sink.run())
    try:
        async with running_inputs(kafka_settings, settings) as inputs:
            for record in (flaky, refused, fine):
                await inputs.producer.send_and_wait(
                    settings.alerts_topic, record.value, key=record.key, headers=record.headers
                )
            await inputs.producer.send_and_wait(settings.alerts_topic, b'{"not": "an alert"}', key=b"junk")
            letters = await read_topic(kafka_settings, dlq(settings.alerts_topic), until=lambda r: len(r) >= 2)
            for _ in range(100):
                if len([r for r in target.received if r[2] == 200]) >= 2:
                    break
                await asyncio.sleep(0.1)
    finally:
        sink.stop()
        await asyncio.wait_for(runner, 10)
        await sink.close()

    by_id: dict[str, list[tuple[dict[str, str], bytes, int]]] = {}
    for headers, body, status in target.received:
        by_id.setdefault(headers["webhook-id"], []).append((headers, body, status))
    assert [s for _, _, s in by_id[flaky.event_id]] == [503, 200]
    assert [s for _, _, s in by_id[refused.event_id]] == [400]
    assert [s for _, _, s in by_id[fine.event_id]] == [200]
    verifier = Webhook(secret)
    for record in (flaky, fine):
        headers, body, _ = by_id[record.event_id][-1]
        assert body == record.value  # the OCSF document, unchanged
        assert verifier.verify(body, headers)["metadata"]["uid"] == record.event_id
        assert headers["ce-id"] == record.event_id
        assert headers["Content-Type"] == "application/json"
    forged = dict(by_id[fine.event_id][-1][0])
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + base64.b64encode(b"x" * 24).decode()).verify(fine.value, forged)
    reasons = sorted((dict(r.headers)["dlq_reason"].decode(), dict(r.headers)["dlq_kind"]) for r in letters)
    assert reasons[0][0].startswith("not a closeloop drift alert")
    assert reasons[0][1] == b"malformed"
    # The alert is fine, the receiver refused it: replayable onto the alerts topic once the SOC side is fixed.
    assert reasons[1] == ("webhook delivery failed: HTTP 400", b"unexpected")
    assert {r.value for r in letters} == {refused.value, b'{"not": "an alert"}'}
