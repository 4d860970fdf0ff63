"""Topic metadata the reconciler needs (partition counts), from the admin API."""

from __future__ import annotations

from typing import Any

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


def reader_options(kafka: KafkaSettings, client_suffix: str) -> dict[str, Any]:
    """Options of a group-less reader (explicit offsets, never commits), with the broker's security settings."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap,
        "client_id": f"{kafka.client_id}-{client_suffix}",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "security_protocol": kafka.security_protocol,
    }
    if kafka.sasl_mechanism:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
    return options
