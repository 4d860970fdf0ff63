"""An unexpected failure is dead-lettered to `<input>.dlq` as such, listed, and re-driven after the fix."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from aiokafka import ConsumerRecord

from closeloop import kafka
from closeloop.consumer_loop import ConsumerLoop
from closeloop.contracts.codec import header_value
from closeloop.dead_letter import DeadLetterPublisher
from closeloop.metrics import ServiceMetrics
from closeloop.replay_dead_letters import REPLAYED_FROM_HEADER
from closeloop.settings import KafkaSettings
from closeloop.topics import TopicSpec, dlq, ensure_topics
from tests.support.cli import closeloop
from tests.support.kafka_helpers import read_topic, unique

pytestmark = pytest.mark.integration


async def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_unexpected_failure_lands_in_the_inputs_dlq_and_replays_after_the_fix(
    kafka_settings: KafkaSettings,
) -> None:
    topic = unique("test.dlq.input")
    await ensure_topics(kafka_settings, [TopicSpec(topic, 3_600_000), TopicSpec(dlq(topic), 3_600_000)], partitions=1)
    # The processor routes each record by its system through a table; "ldap" is missing (a config gap, not
    # bad input): processing fails with a KeyError, repeatedly, until the table has it.
    routes = {"okta": "api"}
    handled: list[tuple[str, str, list[tuple[str, bytes]]]] = []

    async def process(record: ConsumerRecord[bytes, bytes]) -> None:
        system = json.loads(record.value)["system"]
        handled.append((system, routes[system], list(record.headers or ())))

    producer = kafka.producer(kafka_settings)
    await producer.start()
    consumer = kafka.consumer(kafka_settings, unique("test-group"), topic)
    await consumer.start()
    loop = ConsumerLoop(
        consumer,
        process,
        DeadLetterPublisher(producer, "dlq-test"),
        ServiceMetrics("dlq-test"),
        max_failed_attempts=2,
        max_backoff_s=0.05,
    )
    task = asyncio.create_task(loop.run())
    try:
        ldap = json.dumps({"system": "ldap", "id": topic}).encode()
        await producer.send_and_wait(topic, ldap, key=b"k-ldap", headers=[("ce_id", b"evt-ldap")])
        await producer.send_and_wait(topic, json.dumps({"system": "okta"}).encode(), key=b"k-okta")
        await wait_until(lambda: [system for system, _, _ in handled] == ["okta"])

        [letter] = await read_topic(kafka_settings, dlq(topic), until=lambda rs: len(rs) >= 1)
        assert (letter.value, letter.key) == (ldap, b"k-ldap")
        assert header_value(letter.headers, "dlq_kind") == "unexpected"
        assert header_value(letter.headers, "dlq_reason") == "processing failed: KeyError: 'ldap'"
        assert header_value(letter.headers, "dlq_source_topic") == topic
        assert header_value(letter.headers, "dlq_source_offset") == "0"

        listed = json.loads((await closeloop("dlq", "list", topic, "--json")).stdout)
        assert [(e["kind"], e["reason"], e["replay_onto"], e["source_offset"]) for e in listed] == [
            ("unexpected", "processing failed: KeyError: 'ldap'", topic, 0)
        ]
        assert listed[0]["value"] == ldap.decode()
        assert listed[0]["original_headers"] == {"ce_id": "evt-ldap"}
        # Piped, the listing is tab-separated with each value whole.
        header, *rows = [line.split("\t") for line in (await closeloop("dlq", "list", topic)).stdout.splitlines()]
        assert header == ["partition", "offset", "kind", "reason", "origin", "failed_at", "replay_onto"]
        assert [(r[2], r[3], r[4], r[6]) for r in rows] == [
            ("unexpected", "processing failed: KeyError: 'ldap'", f"kafka {topic}/0/0", topic)
        ]

        dry = await closeloop("dlq", "replay", f"{dlq(topic)}", "--dry-run", "--kind", "unexpected")
        assert "would be replayed" in dry.stderr
        assert "KeyError" in dry.stdout

        routes["ldap"] = "manual"  # the fix
        unrelated = await closeloop("dlq", "replay", topic, "--reason", "no such reason")
        assert "0 letter(s) replayed" in unrelated.stderr
        await closeloop("dlq", "replay", topic, "--from-offset", "0", "--to-offset", "0", "--kind", "unexpected")
        await wait_until(lambda: [system for system, _, _ in handled] == ["okta", "ldap"])
    finally:
        loop.stop()
        await task
        await consumer.stop()
        await producer.stop()

    _, route, headers = handled[1]
    assert route == "manual"
    # The original's headers are restored, and the replay says which letter it came from.
    assert header_value(headers, "ce_id") == "evt-ldap"
    assert header_value(headers, REPLAYED_FROM_HEADER) == f"{dlq(topic)}/0/0"
    # The dry run published nothing: the input holds the two records and the one replay.
    records = await read_topic(kafka_settings, topic, until=lambda rs: len(rs) >= 3)
    assert len(records) == 3
