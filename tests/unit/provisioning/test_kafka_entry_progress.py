"""Progress records on the tickets and grants topics are skipped by their type header, before decoding."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from closeloop.contracts.codec import cloudevents_headers, encode
from closeloop.contracts.progress import StreamProgress
from closeloop.metrics import ServiceMetrics
from provisioning.kafka_entry import RecordInputs

WHEN = datetime(2026, 4, 1, tzinfo=UTC)


class NoContext:
    """Any attribute access means the entry point tried to act on a progress record."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected use of the provisioning context: {name}")


@pytest.mark.parametrize("topic", ["t.tickets", "t.grants"])
async def test_progress_records_are_skipped(topic: str) -> None:
    metrics = ServiceMetrics("provisioning")
    inputs = RecordInputs(NoContext(), metrics, tickets_topic="t.tickets", grants_topic="t.grants")  # type: ignore[arg-type]
    progress: StreamProgress = StreamProgress.create(
        occurred_at=WHEN,
        source="closeloop/connectors",
        correlation_id="connectors@a",
        stream=topic,
        partition=1,
        producer="connectors@a",
        watermark=WHEN,
    )
    value = encode(progress)
    await inputs(ConsumerRecord(topic, 1, 3, 0, 0, None, value, None, 1, len(value), cloudevents_headers(progress)))
    assert metrics.skipped.labels("provisioning", topic, "stream_progress")._value.get() == 1
