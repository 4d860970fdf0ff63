"""Topic metadata the reconciler needs (partition counts), from the admin API."""

from __future__ import annotations

from closeloop.kafka import admin_client
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
