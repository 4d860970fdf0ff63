"""The producer side of watermarks: in-flight receipts, raw-topic marks and replay holds bound what a producer
claims; nothing is claimed while its raw-topic position is unknown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from closeloop.contracts.codec import decode
from closeloop.contracts.progress import StreamProgress, is_stream_progress
from closeloop.progress_beacon import InFlight, ProgressBeacon, SourceMarks

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class FakeProducer:
    def __init__(self, partitions: int) -> None:
        self._partitions = set(range(partitions))
        self.sent: list[tuple[str, bytes, int, list[tuple[str, bytes]]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return self._partitions

    async def send(self, topic: str, value: bytes, *, partition: int, headers: list[tuple[str, bytes]]) -> Any:
        self.sent.append((topic, value, partition, headers))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def beacon(producer: FakeProducer, marks: SourceMarks | None = None) -> ProgressBeacon:
    return ProgressBeacon(
        producer,  # type: ignore[arg-type]
        "itsm.tickets.v1",
        "request-intake@a",
        "closeloop/request-intake",
        interval_s=1.0,
        marks=marks,
        clock=lambda: NOW,
    )


def test_in_flight_keeps_the_oldest_receipt_until_it_is_done() -> None:
    in_flight = InFlight(clock=lambda: NOW)
    assert in_flight.oldest() is None
    with in_flight.receiving(NOW - timedelta(seconds=5)):
        with in_flight.receiving():
            assert in_flight.oldest() == NOW - timedelta(seconds=5)
            assert len(in_flight) == 2
        assert in_flight.oldest() == NOW - timedelta(seconds=5)
    assert in_flight.oldest() is None


def test_watermark_is_the_lowest_of_now_in_flight_marks_and_hold() -> None:
    marks = SourceMarks()
    subject = beacon(FakeProducer(3), marks)
    assert subject.watermark() is None  # the raw-topic consumer has no assignment yet
    marks.replace({"raw/0": NOW - timedelta(seconds=2), "raw/1": None})
    assert subject.watermark() is None  # a lagging partition with nothing handled yet
    marks.replace({"raw/0": NOW - timedelta(seconds=2), "raw/1": NOW})
    assert subject.watermark() == NOW - timedelta(seconds=2)
    with subject.in_flight.receiving(NOW - timedelta(seconds=7)):
        assert subject.watermark() == NOW - timedelta(seconds=7)
    subject.hold(NOW - timedelta(hours=3))
    subject.hold(NOW - timedelta(hours=1))
    assert subject.watermark() == NOW - timedelta(hours=3)


async def test_publish_once_sends_one_record_per_partition_and_nothing_while_unknown() -> None:
    producer = FakeProducer(3)
    marks = SourceMarks()
    subject = beacon(producer, marks)
    assert await subject.publish_once() is False
    assert producer.sent == []
    marks.replace({"raw/0": NOW})
    assert await subject.publish_once(closing=True) is True
    assert sorted(partition for _, _, partition, _ in producer.sent) == [0, 1, 2]
    for topic, value, partition, headers in producer.sent:
        assert topic == "itsm.tickets.v1"
        assert is_stream_progress(headers)
        record = decode(value)
        assert isinstance(record, StreamProgress)
        assert (record.partition, record.watermark, record.closing) == (partition, NOW, True)
        assert record.producer == "request-intake@a"


def test_data_records_are_not_progress() -> None:
    assert not is_stream_progress([("ce_type", b"itsm.ticket.transitioned")])
    assert not is_stream_progress(None)
