"""The queue-consumer loop every plain-Kafka service uses.

Validate, skip bad input to the dead-letter topic with its reason, retry transient failures with
backoff without losing the record's place, and commit each partition's offset only after the effect.
Handlers are plain async callables; they know nothing of aiokafka.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from structlog.contextvars import bound_contextvars
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from closeloop.contracts.codec import header_value
from closeloop.dead_letter import DeadLetter, DeadLetterPublisher
from closeloop.logging import get_logger
from closeloop.metrics import ServiceMetrics
from closeloop.progress_beacon import SourceMarks

log = get_logger(__name__)

# How old the fetcher's idea of a partition's high watermark can be (aiokafka's fetch wait is 500 ms).
HIGHWATER_STALENESS = timedelta(seconds=1)

RecordProcessor = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    KafkaError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)


class BadInput(Exception):
    """The record can never be processed (malformed, fails validation, unmappable): dead-letter it."""

    def __init__(self, reason: str, reason_class: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.reason_class = reason_class


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


class ConsumerLoop:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        process: RecordProcessor,
        dead_letters: DeadLetterPublisher,
        metrics: ServiceMetrics,
        *,
        max_failed_attempts: int = 5,
        max_backoff_s: float = 30.0,
        batch_size: int = 500,
        marks: SourceMarks | None = None,
    ) -> None:
        self._consumer = consumer
        self._process = process
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._max_failed_attempts = max_failed_attempts
        self._max_backoff_s = max_backoff_s
        self._batch_size = batch_size
        self._stopping = asyncio.Event()
        # How far each input partition is handled, for the service's progress records (see progress_beacon).
        self._marks = marks
        self._handled_at: dict[TopicPartition, datetime] = {}

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            fetched_at = datetime.now(UTC)
            batches = await self._consumer.getmany(timeout_ms=250, max_records=self._batch_size)
            for tp, records in batches.items():
                for record in records:
                    await self._handle(record)
                    self._handled_at[tp] = datetime.fromtimestamp(record.timestamp / 1000, UTC)
                await self._commit(tp, records[-1].offset + 1)
                self._record_lag(tp, records[-1].offset + 1)
            if self._marks is not None:
                self._marks.replace(await self._source_marks(fetched_at))

    async def _source_marks(self, fetched_at: datetime) -> dict[str, datetime | None] | None:
        """Per assigned partition: `fetched_at` when caught up with it, else the append time of the last
        record handled (records after it were appended later); None (unknown) before any fetch."""
        assigned = self._consumer.assignment()
        if not assigned:
            return None  # no assignment yet, or a rebalance: a backlog may be waiting for this instance
        marks: dict[str, datetime | None] = {}
        for tp in assigned:
            highwater = self._consumer.highwater(tp)
            position = await self._consumer.position(tp) if highwater is not None else None
            if highwater is not None and position is not None and position >= highwater:
                # The high watermark comes from the background fetcher's last response, up to one fetch
                # wait old: claim a little less than the time of this round.
                marks[f"{tp.topic}/{tp.partition}"] = fetched_at - HIGHWATER_STALENESS
            else:
                marks[f"{tp.topic}/{tp.partition}"] = self._handled_at.get(tp)
        return marks

    async def _commit(self, tp: TopicPartition, next_offset: int) -> None:
        try:
            await self._consumer.commit({tp: next_offset})
        except CommitFailedError:
            # The partition moved to another member; it will re-deliver from the last commit and
            # every effect is idempotent, so this is safe to log and continue.
            log.warning("commit failed after rebalance", topic=tp.topic, partition=tp.partition)

    def _record_lag(self, tp: TopicPartition, position: int) -> None:
        highwater = self._consumer.highwater(tp)
        if highwater is not None:
            self._metrics.consumer_lag.labels(self._metrics.service, tp.topic, str(tp.partition)).set(
                max(highwater - position, 0)
            )

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        started = time.perf_counter()
        correlation = header_value(record.headers, "ce_correlationid")
        self._metrics.received(record.topic)
        with bound_contextvars(correlation_id=correlation, topic=record.topic, offset=record.offset):
            try:
                await self._with_retries(record)
            except BadInput as exc:
                await self._dead_letter(record, exc.reason, exc.reason_class)
            except Exception as exc:
                # Not known to be transient and still failing after the retries: keep it, move on.
                log.exception("record failed repeatedly; dead-lettering", error_type=type(exc).__name__)
                await self._dead_letter(record, f"processing failed: {type(exc).__name__}: {exc}", "processing_error")
        self._metrics.observe(record.topic, time.perf_counter() - started)

    async def _with_retries(self, record: ConsumerRecord[bytes, bytes]) -> None:
        attempts_left = self._max_failed_attempts

        def should_retry(exc: BaseException) -> bool:
            nonlocal attempts_left
            if not isinstance(exc, Exception):
                return False  # cancellation and interpreter exits end the loop, they are not failed attempts
            if isinstance(exc, BadInput) or (self._stopping.is_set() and not is_transient(exc)):
                return False
            if is_transient(exc):
                self._metrics.transient("process")
                log.warning("transient failure; retrying", error_type=type(exc).__name__, error=str(exc))
                return True  # infrastructure outages are waited out, never turned into dead letters
            attempts_left -= 1
            return attempts_left > 0

        async for attempt in AsyncRetrying(
            retry=retry_if_exception(should_retry),
            wait=wait_exponential(multiplier=0.2, max=self._max_backoff_s),
            stop=stop_after_attempt(10**9),
            reraise=True,
        ):
            with attempt:
                await self._process(record)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str, reason_class: str) -> None:
        log.warning("dead-lettered", reason=reason, reason_class=reason_class)
        letter = DeadLetter(
            topic=record.topic,
            value=record.value,
            reason=reason,
            key=record.key,
            partition=record.partition,
            offset=record.offset,
            original_headers=tuple(record.headers or ()),
        )
        await self._dead_letters.send(letter)
        self._metrics.dead_lettered(record.topic, reason_class)
