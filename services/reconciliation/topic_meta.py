"""Topic metadata the reconciler needs (partition counts), from the admin API."""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from closeloop.kafka import admin_client, client_options
from closeloop.settings import KafkaSettings


async def partition_count(kafka: KafkaSettings, topic: str) -> int:
    """Number of partitions of `topic`; RuntimeError when it does not exist."""
    admin = admin_client(kafka)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = described[0].get("partitions") if described else None
    if not partitions or described[0].get("error_code"):
        raise RuntimeError(f"topic {topic} does not exist or has no partitions")
    return len(partitions)


def reader_options(kafka: KafkaSettings, client_suffix: str) -> dict[str, Any]:
    """Options of a group-less reader (explicit offsets, never commits), with the broker's security settings."""
    return {**client_options(kafka, client_suffix), "enable_auto_commit": False, "auto_offset_reset": "earliest"}


async def committed_offsets(
    kafka: KafkaSettings, group: str, partitions: set[tuple[str, int]]
) -> dict[tuple[str, int], int | None]:
    """The group's committed offset of each partition (None where nothing is committed)."""
    admin = admin_client(kafka)
    await admin.start()
    try:
        wanted = [TopicPartition(topic, partition) for topic, partition in sorted(partitions)]
        found = await admin.list_consumer_group_offsets(group, partitions=wanted)
    finally:
        await admin.close()
    result: dict[tuple[str, int], int | None] = dict.fromkeys(partitions)
    for tp, meta in found.items():
        result[(tp.topic, tp.partition)] = meta.offset if meta.offset >= 0 else None
    return result


async def start_offsets(
    kafka: KafkaSettings, group: str, partitions: set[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """Where the group starts reading each partition: its committed offset, else the log start (earliest)."""
    committed = await committed_offsets(kafka, group, partitions)
    missing = [TopicPartition(topic, partition) for (topic, partition), offset in committed.items() if offset is None]
    starts: dict[tuple[str, int], int] = {tp: offset for tp, offset in committed.items() if offset is not None}
    if missing:
        consumer = AIOKafkaConsumer(**reader_options(kafka, "start-offsets"))
        await consumer.start()
        try:
            for tp, offset in (await consumer.beginning_offsets(missing)).items():
                starts[(tp.topic, tp.partition)] = offset
        finally:
            await consumer.stop()
    return starts


async def read_range(
    kafka: KafkaSettings, topic: str, partition: int, start: int, end: int, timeout_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Records of one partition with start <= offset < end (fewer where compaction removed some)."""
    consumer = AIOKafkaConsumer(**reader_options(kafka, "gap-reader"))
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        deadline = time.monotonic() + timeout_s
        while await consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not re-read {topic}[{partition}] {start}..{end}")
            batch = await consumer.getmany(tp, timeout_ms=500)
            records += [r for r in batch.get(tp, []) if r.offset < end]
    finally:
        await consumer.stop()
    return records
