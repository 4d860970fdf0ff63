"""The alert ledger: ids of alert records already on the alerts topic, so a restart does not publish them again.

The join writes its state only after its alerts are acknowledged, so after a crash it re-decides (and would
re-send, with the same deterministic ids) the alerts of the inputs it had not committed. Before processing
after a (re)assignment, the reconciler reads the tail of the alerts topic back (the last records of each
partition, however long ago they were written: a worker may restart hours after it died) and skips ids
already there. Consumers must still deduplicate on the id (at-least-once end to end); this keeps the topic clean.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer, TopicPartition

from closeloop.logging import get_logger
from closeloop.settings import KafkaSettings
from reconciliation.topic_meta import partition_count, reader_options

log = get_logger(__name__)

ID_HEADER = "ce_id"


class AlertLedger:
    def __init__(self, kafka: KafkaSettings, topic: str, tail_records: int, max_ids: int = 500_000) -> None:
        self._kafka = kafka
        self._topic = topic
        self._tail = tail_records
        self._max_ids = max_ids
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.ready = asyncio.Event()
        self.ready.set()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._max_ids:
            self._ids.popitem(last=False)

    async def reload(self) -> int:
        """Read the last `tail_records` records of every alerts partition; returns the number of ids read."""
        started = time.monotonic()
        consumer = AIOKafkaConsumer(**reader_options(self._kafka, "alert-ledger"))
        await consumer.start()
        read = 0
        try:
            tps = [TopicPartition(self._topic, p) for p in range(await partition_count(self._kafka, self._topic))]
            consumer.assign(tps)
            beginnings = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            pending = {}
            for tp in tps:
                start = max(beginnings[tp], ends[tp] - self._tail)
                if start >= ends[tp]:
                    continue
                consumer.seek(tp, start)
                pending[tp] = ends[tp]
            deadline = time.monotonic() + 30
            while pending and time.monotonic() < deadline:
                batch = await consumer.getmany(*pending, timeout_ms=500)
                for tp, records in batch.items():
                    for record in records:
                        for key, value in record.headers or ():
                            if key == ID_HEADER and value:
                                self.add(value.decode(errors="replace"))
                                read += 1
                    if records and records[-1].offset + 1 >= pending[tp]:
                        del pending[tp]
        finally:
            await consumer.stop()
        log.info("alert ledger loaded", ids=read, seconds=round(time.monotonic() - started, 3))
        return read
