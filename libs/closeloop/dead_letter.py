"""Dead letters: one rule for where they go, one publisher every service uses.

The rule: a letter goes to the dead-letter topic of the topic its original can be replayed onto, so
`closeloop dlq replay <topic>` re-publishes every letter of `<topic>.dlq` onto `<topic>`.
- A record consumed from a topic that cannot be processed: `<that topic>.dlq`.
- A hook or webhook body, or a record of a backfill file: the raw topic the same payload could have been
  published onto (`iam.raw.<source>.dlq`, `itsm.raw.<system>.dlq`); a raw record and a hook have the same
  effect, so the raw topic is where the payload is replayed once the fix is in.

Every letter keeps the original bytes and key and says:
- `dlq_kind`: `malformed` (the input itself is at fault: it fails the same way until the parser, the mapping
  or the input changes) or `unexpected` (the input is fine, processing failed for another reason: a bug, a
  record that does not exist yet, a refusal downstream);
- `dlq_reason`; `dlq_source` (the ingress: `kafka`, `kafka:<topic>`, `hook:<path>`, `webhook:<system>`,
  `replay:<file>`); `dlq_source_topic` (the topic to replay onto); `dlq_source_partition` and
  `dlq_source_offset` when the original was a Kafka record; `dlq_failed_at`; `dlq_service`;
- `dlq_original_<name>` for each header of the original (restored on replay).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from aiokafka import ConsumerRecord

from closeloop.topics import DLQ_SUFFIX, dlq, iam_raw, itsm_raw

MAX_REASON_BYTES = 4000
ORIGINAL_HEADER_PREFIX = "dlq_original_"
KIND_HEADER = "dlq_kind"
Headers = list[tuple[str, bytes]]


class Consumed(Protocol):
    """A record read from a topic: aiokafka's `ConsumerRecord`, or what a faust agent was handed."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | None: ...


class Kind(StrEnum):
    MALFORMED = "malformed"
    UNEXPECTED = "unexpected"


@dataclass(frozen=True)
class DeadLetter:
    # The topic the original can be replayed onto; the letter goes to `<topic>.dlq`.
    topic: str
    value: bytes | None
    reason: str
    kind: Kind = Kind.MALFORMED
    key: bytes | None = None
    source: str = "kafka"
    partition: int | None = None
    offset: int | None = None
    original_headers: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of_record(cls, record: Consumed, reason: str, kind: Kind) -> DeadLetter:
        """A consumed record that failed: replayable onto the topic it was read from."""
        return cls(
            topic=record.topic,
            value=record.value,
            reason=reason,
            kind=kind,
            key=record.key,
            partition=record.partition,
            offset=record.offset,
            original_headers=tuple(record.headers or ()),
        )

    @property
    def dead_letter_topic(self) -> str:
        return dlq(self.topic)

    def headers(self, service: str) -> Headers:
        headers = [
            (KIND_HEADER, self.kind.value.encode()),
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
        headers += [(ORIGINAL_HEADER_PREFIX + k, v) for k, v in self.original_headers if v is not None]
        return headers


class LetterProducer(Protocol):
    """What the publisher needs of a producer: aiokafka's `AIOKafkaProducer` has it as is."""

    async def send_and_wait(self, topic: str, value: bytes | None, *, key: bytes | None, headers: Headers) -> Any: ...


class DeadLetterPublisher:
    """Writes letters to `<letter.topic>.dlq`; every ingress and consumer of every service uses this one."""

    def __init__(self, producer: LetterProducer, service: str, *, timeout_s: float | None = None) -> None:
        self._producer = producer
        self._service = service
        # Upper bound on waiting for the broker's acknowledgement (an HTTP caller is waiting on it).
        self._timeout_s = timeout_s

    async def send(self, letter: DeadLetter) -> None:
        """Durably write the letter; the caller acknowledges its input only after."""
        write = self._producer.send_and_wait(
            letter.dead_letter_topic, letter.value, key=letter.key, headers=letter.headers(self._service)
        )
        if self._timeout_s is None:
            await write
        else:
            await asyncio.wait_for(write, self._timeout_s)


@dataclass(frozen=True)
class StoredLetter:
    """A letter as read back from a dead-letter topic, with the topic its original is replayed onto."""

    dead_letter_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    kind: str  # a Kind, or "unknown" for letters written before the kind header existed
    reason: str
    source: str
    replay_topic: str
    source_partition: int | None
    source_offset: int | None
    failed_at: str | None
    service: str | None
    original_headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, record: ConsumerRecord[bytes, bytes]) -> StoredLetter:
        headers = {k: v.decode(errors="replace") for k, v in record.headers or () if v is not None}
        return cls(
            dead_letter_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            kind=headers.get(KIND_HEADER, "unknown"),
            reason=headers.get("dlq_reason", ""),
            source=headers.get("dlq_source", ""),
            replay_topic=replay_topic(record.topic, headers),
            source_partition=_number(headers.get("dlq_source_partition")),
            source_offset=_number(headers.get("dlq_source_offset")),
            failed_at=headers.get("dlq_failed_at"),
            service=headers.get("dlq_service"),
            original_headers=tuple(
                (k.removeprefix(ORIGINAL_HEADER_PREFIX), v)
                for k, v in record.headers or ()
                if k.startswith(ORIGINAL_HEADER_PREFIX) and v is not None
            ),
        )


def replay_topic(dead_letter_topic: str, headers: dict[str, str]) -> str:
    """Where a letter's original is replayed: the topic its dead-letter topic belongs to.

    Letters written before the rule (no `dlq_kind`) kept hook and webhook bodies on the grants or tickets
    dead-letter topic; their `dlq_source` names the ingress, whose raw topic is where they replay.
    """
    own = headers.get("dlq_source_topic") or dead_letter_topic.removesuffix(DLQ_SUFFIX)
    if KIND_HEADER in headers:
        return own
    source = headers.get("dlq_source", "")
    if source.startswith("kafka:"):
        return source.removeprefix("kafka:")
    if source.startswith("hook:/v1/hooks/"):
        return iam_raw(source.rsplit("/", 1)[1])
    if source.startswith("webhook:"):
        return itsm_raw(source.removeprefix("webhook:"))
    return own


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None
