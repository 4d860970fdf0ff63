"""Dead letters: the original bytes, the reason, where they came from, on `<topic>.dlq`.

Every consumer and every ingress uses this, so bad input is kept for inspection and replay and
never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from closeloop.topics import dlq

MAX_REASON_BYTES = 4000


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    value: bytes | None
    reason: str
    key: bytes | None = None
    source: str = "kafka"
    partition: int | None = None
    offset: int | None = None
    original_headers: tuple[tuple[str, bytes], ...] = ()

    def headers(self, service: str) -> list[tuple[str, bytes]]:
        headers = [
            ("dlq_reason", self.reason.encode("utf-8", "backslashreplace")[:MAX_REASON_BYTES]),
            ("dlq_source_topic", self.topic.encode()),
            ("dlq_source", self.source.encode("utf-8", "backslashreplace")),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
            ("dlq_service", service.encode()),
        ]
        if self.partition is not None:
            headers.append(("dlq_source_partition", str(self.partition).encode()))
        if self.offset is not None:
            headers.append(("dlq_source_offset", str(self.offset).encode()))
        # Keep the original headers (renamed) so a replay can restore them.
        headers += [(f"dlq_original_{k}", v) for k, v in self.original_headers if v is not None]
        return headers


class DeadLetterPublisher:
    def __init__(self, producer: AIOKafkaProducer, service: str) -> None:
        self._producer = producer
        self._service = service

    async def send(self, letter: DeadLetter) -> None:
        """Durably write the dead letter to `<topic>.dlq`; the caller acknowledges its input only after."""
        await self._producer.send_and_wait(
            dlq(letter.topic), letter.value, key=letter.key, headers=letter.headers(self._service)
        )
