"""An event through the real broker, and a malformed record kept in the dead-letter topic."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from closeloop import kafka
from closeloop.consumer_loop import BadInput, ConsumerLoop
from closeloop.contracts.codec import DecodeError, decode, encode, header_value
from closeloop.contracts.tickets import TicketEvent
from closeloop.dead_letter import DeadLetterPublisher
from closeloop.metrics import ServiceMetrics
from closeloop.settings import KafkaSettings
from closeloop.topics import TopicSpec, dlq, ensure_topics
from tests.support.kafka_helpers import read_topic, unique

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[2] / "data" / "contracts" / "itsm.ticket.transitioned.v1.json"


def ticket(number: str) -> TicketEvent:
    event = decode(FIXTURE.read_bytes())
    assert isinstance(event, TicketEvent)
    return event.model_copy(
        update={"event_id": f"evt-{number}", "ticket_number": number, "occurred_at": datetime.now(UTC)}
    )


async def test_event_round_trips_and_bad_record_goes_to_dlq(kafka_settings: KafkaSettings) -> None:
    topic = unique("test.roundtrip")
    await ensure_topics(kafka_settings, [TopicSpec(topic, 3_600_000), TopicSpec(dlq(topic), 3_600_000)], partitions=1)
    producer = kafka.producer(kafka_settings)
    await producer.start()
    try:
        await kafka.publish(producer, topic, ticket("RITM1"))
        await producer.send_and_wait(topic, b'{"event_type": "itsm.ticket.transitioned", "oops": ', key=b"bad")
        await kafka.publish(producer, topic, ticket("RITM2"))

        seen: list[TicketEvent] = []

        async def process(record: ConsumerRecord[bytes, bytes]) -> None:
            try:
                event = decode(record.value, expected=TicketEvent)
            except DecodeError as exc:
                raise BadInput(exc.reason) from exc
            assert isinstance(event, TicketEvent)
            seen.append(event)

        group = unique("test-group")
        consumer = kafka.consumer(kafka_settings, group, topic)
        await consumer.start()
        metrics = ServiceMetrics("roundtrip-test")
        loop = ConsumerLoop(consumer, process, DeadLetterPublisher(producer, "roundtrip-test"), metrics)
        task = asyncio.create_task(loop.run())
        try:
            for _ in range(100):
                if len(seen) == 2:
                    break
                await asyncio.sleep(0.1)
        finally:
            loop.stop()
            await task
            await consumer.stop()

        assert [e.ticket_number for e in seen] == ["RITM1", "RITM2"]  # the consumer kept going past the bad record
        assert seen[0].subject == "okta:user:alice@example.com|okta:group:00g1engadmins|member"

        dead = await read_topic(kafka_settings, dlq(topic), until=lambda r: len(r) >= 1)
        assert len(dead) == 1
        letter = dead[0]
        assert letter.value == b'{"event_type": "itsm.ticket.transitioned", "oops": '
        assert letter.key == b"bad"
        assert "not JSON" in (header_value(letter.headers, "dlq_reason") or "")
        assert header_value(letter.headers, "dlq_source_topic") == topic
        assert header_value(letter.headers, "dlq_source_offset") == "1"
        assert metrics.dead_letters.labels("roundtrip-test", topic, "invalid")._value.get() == 1

        # Offsets were committed after the effect: a new member of the group has nothing left to read.
        again = kafka.consumer(kafka_settings, group, topic)
        await again.start()
        try:
            leftover = await again.getmany(timeout_ms=1500)
            assert sum(len(v) for v in leftover.values()) == 0
        finally:
            await again.stop()
    finally:
        await producer.stop()


async def test_headers_carry_cloudevents_attributes(kafka_settings: KafkaSettings) -> None:
    topic = unique("test.headers")
    await ensure_topics(kafka_settings, [TopicSpec(topic, 3_600_000)], partitions=1)
    producer = kafka.producer(kafka_settings)
    await producer.start()
    try:
        event = ticket("RITM3")
        await kafka.publish(producer, topic, event)
    finally:
        await producer.stop()
    records = await read_topic(kafka_settings, topic, until=lambda r: len(r) >= 1)
    record = records[0]
    assert record.key == str(event.entitlement).encode()
    assert json.loads(record.value) == json.loads(encode(event))
    assert header_value(record.headers, "ce_id") == "evt-RITM3"
    assert header_value(record.headers, "ce_type") == "itsm.ticket.transitioned"
    assert header_value(record.headers, "ce_specversion") == "1.0"


async def test_ensure_topics_is_idempotent(kafka_settings: KafkaSettings) -> None:
    topic = unique("test.idem")
    specs = [TopicSpec(topic, 3_600_000, compacted=True)]
    assert await ensure_topics(kafka_settings, specs) == [topic]
    assert await ensure_topics(kafka_settings, specs) == []


async def test_cancelling_the_loop_mid_record_stops_it_without_retrying(kafka_settings: KafkaSettings) -> None:
    topic = unique("test.cancel")
    await ensure_topics(kafka_settings, [TopicSpec(topic, 3_600_000), TopicSpec(dlq(topic), 3_600_000)], partitions=1)
    producer = kafka.producer(kafka_settings)
    await producer.start()
    started = asyncio.Event()
    calls = 0

    async def slow(record: ConsumerRecord[bytes, bytes]) -> None:
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.sleep(60)

    consumer = kafka.consumer(kafka_settings, unique("test-group"), topic)
    await consumer.start()
    try:
        await kafka.publish(producer, topic, ticket("RITM9"))
        loop = ConsumerLoop(consumer, slow, DeadLetterPublisher(producer, "cancel-test"), ServiceMetrics("cancel-test"))
        task = asyncio.create_task(loop.run())
        await asyncio.wait_for(started.wait(), 20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert calls == 1
    finally:
        await consumer.stop()
        await producer.stop()
