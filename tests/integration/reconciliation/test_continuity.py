"""Records faust fails to deliver after an assignment are re-read from the broker, in order (see continuity.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from closeloop.kafka import client_options, producer
from closeloop.metrics import ServiceMetrics
from closeloop.settings import KafkaSettings
from closeloop.topics import TopicSpec, ensure_topics
from reconciliation.app import Reconciler
from reconciliation.join_records import Incoming

from .support import reconciler_settings

pytestmark = pytest.mark.integration


@dataclass
class Delivered:
    """What faust hands an agent: an event with a message (only the attributes the reconciler reads)."""

    message: Incoming


async def test_a_hole_after_assignment_is_re_read_and_duplicates_are_dropped(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = reconciler_settings(tmp_path)
    topic = settings.grants_topic
    await ensure_topics(kafka_settings, [TopicSpec(topic, retention_ms=3_600_000)], partitions=1)
    prod = producer(kafka_settings)
    await prod.start()
    try:
        for i in range(10):
            await prod.send_and_wait(topic, f"v{i}".encode(), key=f"k{i}".encode(), partition=0)
    finally:
        await prod.stop()
    # The group committed offset 3 (records 0-2 handled before a restart).
    committer = AIOKafkaConsumer(
        **client_options(kafka_settings, "committer"), group_id=settings.app_id, enable_auto_commit=False
    )
    await committer.start()
    try:
        committer.assign([TopicPartition(topic, 0)])
        await committer.commit({TopicPartition(topic, 0): 3})
    finally:
        await committer.stop()

    reconciler = Reconciler(
        settings, kafka_settings, ServiceMetrics("reconciliation"), grants_partitions=1, data_dir=tmp_path
    )

    def at(offset: int) -> Delivered:
        return Delivered(Incoming(topic, 0, offset, f"k{offset}".encode(), f"v{offset}".encode(), []))

    # faust delivers 3 and 4, then jumps to 8 (5-7 skipped), then re-delivers 4.
    first = await reconciler.continuous(topic, [at(3), at(4)])
    assert [r.offset for r in first] == [3, 4]
    second = await reconciler.continuous(topic, [at(8), at(4), at(9)])
    assert [r.offset for r in second] == [5, 6, 7, 8, 9]
    assert [r.value for r in second[:3]] == [b"v5", b"v6", b"v7"]
    assert reconciler.extra.holes.labels(topic)._value.get() == 1
