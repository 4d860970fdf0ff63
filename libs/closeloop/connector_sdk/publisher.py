"""Publish grant events durably, keyed by entitlement key (status events by principal)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaProducer

from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import cloudevents_headers, encode, kafka_key
from closeloop.topics import IAM_GRANTS


class GrantPublisher:
    """Sends events to the grants topic and returns only once the broker has every one (acks=all).

    Use a producer from `closeloop.kafka.producer` (idempotent, acks=all). Records are keyed by the
    entitlement key, so every event about one entitlement lands on one partition, in order.
    """

    def __init__(self, producer: AIOKafkaProducer, topic: str = IAM_GRANTS) -> None:
        self.producer = producer
        self.topic = topic

    async def publish(self, events: Sequence[Envelope]) -> None:
        futures = []
        for event in events:
            key = kafka_key(event)
            if key is None:
                raise ValueError(f"{event.event_type} {event.event_id} has no key: set `key` or `subject`")
            futures.append(
                await self.producer.send(self.topic, encode(event), key=key, headers=cloudevents_headers(event))
            )
        for future in futures:
            await future

    async def partitions(self) -> list[int]:
        """Partitions of the grants topic (fetches metadata if needed)."""
        found = await self.producer.partitions_for(self.topic)
        if not found:
            raise RuntimeError(f"topic {self.topic} has no partitions (does it exist?)")
        return sorted(found)

    async def publish_to_every_partition(self, events_by_partition: Mapping[int, Envelope], key: bytes) -> None:
        futures = []
        for partition, event in sorted(events_by_partition.items()):
            futures.append(
                await self.producer.send(
                    self.topic, encode(event), key=key, partition=partition, headers=cloudevents_headers(event)
                )
            )
        for future in futures:
            await future
