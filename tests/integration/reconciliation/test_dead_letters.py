"""Bad input never stops the reconciler: it goes to `<topic>.dlq` with the closeloop dead-letter headers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from closeloop.contracts.alerts import DriftRule
from closeloop.settings import KafkaSettings
from closeloop.topics import dlq
from tests.support.kafka_helpers import read_topic
from tests.unit.reconciliation.scenarios import SCENARIOS, grant, key

from .support import in_process, read_alerts, reconciler_settings, running_inputs

pytestmark = pytest.mark.integration


async def test_undecodable_records_are_dead_lettered_and_processing_continues(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = reconciler_settings(tmp_path)
    wrong_topic = grant(key("okta:user:wrong@example.com", "okta:group:00gwrong", "member"), datetime.now(UTC))
    bad = {
        settings.tickets_topic: [b"{not json", wrong_topic.model_dump_json().encode()],
        settings.grants_topic: [b'{"event_type": "iam.grant.changed", "schema_version": 1}'],
        settings.entitlements_topic: [b"[]"],
    }
    async with in_process(kafka_settings, settings), running_inputs(kafka_settings, settings) as inputs:
        for topic, values in bad.items():
            for value in values:
                await inputs.producer.send_and_wait(topic, value, key=b"bad-key", headers=[("ce_id", b"x-1")])
        scenario = SCENARIOS[DriftRule.UNTICKETED_GRANT](datetime.now(UTC), settings.app_id[-8:], False)
        await inputs.send_all(scenario.inputs)
        alerts = await read_alerts(kafka_settings, settings.alerts_topic, until_count=1)
        letters = {topic: await _read_letters(kafka_settings, dlq(topic), len(values)) for topic, values in bad.items()}
    assert [a.rule for a in alerts.alerts] == [DriftRule.UNTICKETED_GRANT]
    for topic, values in bad.items():
        records = letters[topic]
        assert sorted(r.value for r in records) == sorted(values)
        for record in records:
            headers = dict(record.headers)
            assert headers["dlq_source_topic"].decode() == topic
            assert headers["dlq_service"] == b"reconciliation"
            assert headers["dlq_kind"] == b"malformed"
            assert headers["dlq_reason"]
            assert headers["dlq_source_offset"].decode().isdigit()
            assert headers["dlq_original_ce_id"] == b"x-1"
            assert record.key == b"bad-key"
    reasons = {dict(r.headers)["dlq_reason"].decode() for r in letters[settings.tickets_topic]}
    assert any("not JSON" in reason for reason in reasons)
    assert any("does not belong on this topic" in reason for reason in reasons)


async def _read_letters(kafka: KafkaSettings, topic: str, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    return await read_topic(kafka, topic, until=lambda records: len(records) >= count)
