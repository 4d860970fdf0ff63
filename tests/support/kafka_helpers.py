"""Small helpers for integration tests: unique names, reading a topic until a condition holds."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from closeloop.contracts.progress import is_stream_progress
from closeloop.kafka import client_options
from closeloop.settings import KafkaSettings


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def read_topic(
    settings: KafkaSettings,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    timeout_s: float = 20.0,
    include_progress: bool = False,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read `topic` from the beginning (no group) until `until(records)` holds or the timeout passes.

    Progress records (which request-intake and the connectors interleave with their data) are left out unless
    asked for."""
    consumer = AIOKafkaConsumer(
        topic, **client_options(settings, "read-until"), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until(records):
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(r for r in part if include_progress or not is_stream_progress(r.headers))
        return records
    finally:
        await consumer.stop()


async def read_for(
    settings: KafkaSettings, topic: str, seconds: float, *, include_progress: bool = False
) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything on `topic` after waiting `seconds` (to assert that nothing more arrives)."""
    await asyncio.sleep(seconds)
    return await read_topic(settings, topic, until=lambda _: False, timeout_s=1.5, include_progress=include_progress)
