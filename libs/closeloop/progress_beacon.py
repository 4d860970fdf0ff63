"""The producing side of stream progress: what is still in flight, how far upstream inputs are read, and a
loop that publishes `StreamProgress` on every partition of the output topic.

A producer's watermark is the oldest receipt time it may still publish: the lowest of
- the receipt time of every input being handled now (`InFlight`),
- for each raw-topic partition it consumes, the append time of the oldest record it has not handled yet, or
  the time it last saw itself caught up (`SourceMarks`, fed by the consumer loop),
- a hold (a replay holds the watermark at the oldest event time it has published until it ends),
- now.
While any of these is unknown (the raw-topic consumer has no assignment yet, e.g. right after a restart
behind a backlog) nothing is published: the consumers keep the last watermark they had, which is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from closeloop.contracts.codec import cloudevents_headers, encode
from closeloop.contracts.progress import StreamProgress
from closeloop.logging import get_logger
from closeloop.runtime import Runtime
from closeloop.settings import ProgressSettings

log = get_logger(__name__)
Clock = Callable[[], datetime]
# Longest wait for one round of progress records (a broker away must not block the service's shutdown).
PUBLISH_TIMEOUT_S = 5.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def producer_id(service: str, settings: ProgressSettings) -> str:
    return f"{service}@{settings.instance or socket.gethostname()}"


class InFlight:
    """Receipt times of the inputs being handled now."""

    def __init__(self, clock: Clock = utcnow) -> None:
        self._clock = clock
        self._items: dict[int, datetime] = {}
        self._ids = itertools.count()

    def __len__(self) -> int:
        return len(self._items)

    @contextlib.contextmanager
    def receiving(self, at: datetime | None = None) -> Iterator[None]:
        token = next(self._ids)
        self._items[token] = at or self._clock()
        try:
            yield
        finally:
            del self._items[token]

    def oldest(self) -> datetime | None:
        return min(self._items.values(), default=None)


class SourceMarks:
    """Per raw-topic partition: everything appended before the mark has been handled. Unknown until the
    consumer has an assignment and has fetched once (it may sit behind a backlog)."""

    def __init__(self) -> None:
        self._marks: dict[str, datetime | None] | None = None

    def replace(self, marks: dict[str, datetime | None] | None) -> None:
        self._marks = marks

    @property
    def known(self) -> bool:
        return self._marks is not None and all(m is not None for m in self._marks.values())

    def lowest(self) -> datetime | None:
        if not self._marks:
            return None
        return min(m for m in self._marks.values() if m is not None)


class ProgressBeacon:
    """Publishes the producer's watermark on every partition of `topic`, every `interval_s`."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        producer_name: str,
        source: str,
        *,
        interval_s: float,
        marks: SourceMarks | None = None,
        in_flight: InFlight | None = None,
        backfill: bool = False,
        clock: Clock = utcnow,
    ) -> None:
        self._producer = producer
        self.topic = topic
        self.producer_name = producer_name
        self._source = source
        self._interval_s = interval_s
        self.marks = marks
        self.in_flight = in_flight or InFlight(clock)
        self._clock = clock
        self._hold: datetime | None = None
        self._backfill = backfill
        self._stop = asyncio.Event()
        self.published = 0

    def hold(self, at: datetime) -> None:
        """Keep the watermark at or below `at` from now on (a replay of old records)."""
        self._hold = at if self._hold is None else min(self._hold, at)

    def watermark(self) -> datetime | None:
        if self.marks is not None and not self.marks.known:
            return None
        candidates = [self._clock(), self.in_flight.oldest(), self._hold]
        if self.marks is not None:
            candidates.append(self.marks.lowest())
        return min(c for c in candidates if c is not None)

    async def publish_once(self, *, closing: bool = False) -> bool:
        """Send one progress record per partition; False when the watermark is not known yet."""
        now = self._clock()
        watermark = self.watermark()
        if watermark is None:
            return False
        partitions = await self._producer.partitions_for(self.topic)
        futures = []
        for partition in sorted(partitions or ()):
            record = StreamProgress.create(
                stream=self.topic,
                partition=partition,
                producer=self.producer_name,
                watermark=watermark,
                in_flight=len(self.in_flight),
                backfill=self._backfill,
                closing=closing,
                occurred_at=now,
                source=self._source,
                correlation_id=self.producer_name,
            )
            futures.append(
                await self._producer.send(
                    self.topic, encode(record), partition=partition, headers=cloudevents_headers(record)
                )
            )
        for future in futures:
            await future
        self.published += 1
        return True

    async def run(self) -> None:
        """Publish until stopped; a failed send is logged and retried on the next interval."""
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self.publish_once(), PUBLISH_TIMEOUT_S)
            except Exception as exc:  # the broker may be away; consumers then hold, which is the point
                log.warning("progress record not published", topic=self.topic, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval_s)

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        """Tell consumers this producer is gone, so they stop waiting for it (best effort)."""
        try:
            await asyncio.wait_for(self.publish_once(closing=True), PUBLISH_TIMEOUT_S)
        except Exception as exc:
            log.warning("closing progress record not published", topic=self.topic, error=repr(exc))


def attach_beacon(
    runtime: Runtime,
    producer: AIOKafkaProducer,
    topic: str,
    service: str,
    settings: ProgressSettings,
    *,
    raw_consumer: bool,
    in_flight: InFlight | None = None,
) -> ProgressBeacon:
    """A service's beacon on its output topic, run by its runtime and closed (`closing`) after the ingresses
    stopped and before the producer closes (register it right after the producer's closer)."""
    beacon = ProgressBeacon(
        producer,
        topic,
        producer_id(service, settings),
        f"closeloop/{service}",
        interval_s=settings.interval_s,
        marks=SourceMarks() if raw_consumer else None,
        in_flight=in_flight,
    )
    runtime.loops.append(beacon.run)
    runtime.stoppers.append(beacon.stop)
    runtime.closers.append(beacon.close)
    return beacon
