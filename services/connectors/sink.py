"""Where ingested records go: grant events to the grants topic, rejected records to its dead-letter topic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaProducer

from closeloop.connector_sdk.publisher import GrantPublisher
from closeloop.contracts.base import Envelope
from closeloop.dead_letter import DeadLetter, DeadLetterPublisher
from closeloop.progress_beacon import ProgressBeacon

SERVICE = "connectors"


@dataclass(frozen=True)
class Rejected:
    """A record (or a whole body) that can never become an event, with where it came from."""

    value: bytes
    reason: str
    origin: str  # e.g. "hook:/v1/hooks/okta", "kafka:iam.raw.okta", "replay:cloudtrail-2024-10.json"
    partition: int | None = None
    offset: int | None = None
    headers: tuple[tuple[str, bytes], ...] = field(default=())


class GrantSink(Protocol):
    async def publish(self, events: Sequence[Envelope]) -> None: ...
    async def reject(self, rejected: Sequence[Rejected]) -> None: ...


class KafkaGrantSink:
    """Durable: both calls return only once the broker acknowledged every record (acks=all)."""

    def __init__(self, producer: AIOKafkaProducer, grants_topic: str) -> None:
        self.grants_topic = grants_topic
        self._grants = GrantPublisher(producer, grants_topic)
        self._dead_letters = DeadLetterPublisher(producer, SERVICE)

    async def publish(self, events: Sequence[Envelope]) -> None:
        if events:
            await self._grants.publish(events)

    async def reject(self, rejected: Sequence[Rejected]) -> None:
        # All malformed connector input lands on `<grants topic>.dlq`, whatever the ingress; the
        # `dlq_source` header says which hook, raw topic or replay file it came from.
        for item in rejected:
            await self._dead_letters.send(
                DeadLetter(
                    topic=self.grants_topic,
                    value=item.value,
                    reason=item.reason,
                    source=item.origin,
                    partition=item.partition,
                    offset=item.offset,
                    original_headers=item.headers,
                )
            )


class MemorySink:
    """Collects what would be published (unit tests)."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []
        self.rejected: list[Rejected] = []

    async def publish(self, events: Sequence[Envelope]) -> None:
        self.events.extend(events)

    async def reject(self, rejected: Sequence[Rejected]) -> None:
        self.rejected.extend(rejected)


class HeldSink:
    """A sink for backfills: before publishing old records it lowers the producer's watermark to the oldest of
    them (and says so on every partition first), so the reconciler does not judge absence on the stream until
    the backfill ends (`ProgressBeacon.close`)."""

    def __init__(self, inner: GrantSink, beacon: ProgressBeacon) -> None:
        self._inner = inner
        self._beacon = beacon
        self.grants_topic = beacon.topic

    async def publish(self, events: Sequence[Envelope]) -> None:
        if events:
            self._beacon.hold(min(event.occurred_at for event in events))
            await self._beacon.publish_once()
        await self._inner.publish(events)

    async def reject(self, rejected: Sequence[Rejected]) -> None:
        await self._inner.reject(rejected)
