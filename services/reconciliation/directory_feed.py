"""Every worker folds the whole identity graph and resource catalog (two compacted topics) into memory.

Why not PostgreSQL: the join binds references on its hot path and must not query a database per event; why not a
partitioned faust table: a ticket on any partition may name any person or resource, so every worker needs all of
it. The topics are small (one record per name group and per resource, compacted) and read from the beginning at
start; `ready` is set once the worker has caught up with what existed at start, and the routers wait for it, so a
restart binds tickets exactly as before. Later records keep arriving; each one that changes the directory bumps
its version, and the reconciler then re-binds the tickets it holds pending.
"""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter

from closeloop.contracts.codec import DecodeError, decode
from closeloop.contracts.directory import IdentityLinked, ResourceCatalogued
from closeloop.identity import Directory
from closeloop.logging import get_logger
from closeloop.metrics import ServiceMetrics
from closeloop.settings import KafkaSettings
from closeloop.topics import TopicSpec, ensure_topics
from reconciliation.topic_meta import partition_count, reader_options

log = get_logger(__name__)


# Header naming the worker that announced a record: it applied the record before sending it, and skips it here.
ANNOUNCER_HEADER = "cl_announcer"


class DirectoryFeed:
    def __init__(
        self, kafka: KafkaSettings, topics: tuple[str, ...], directory: Directory, metrics: ServiceMetrics
    ) -> None:
        self._kafka = kafka
        self.announcer = uuid.uuid4().hex.encode()
        self._topics = topics
        self.directory = directory
        self.ready = asyncio.Event()
        self.conflicts = Counter(
            "closeloop_identity_link_conflicts",
            "Names seen together that the identity graph gives to different identities (not merged)",
            ["origin"],
            registry=metrics.registry,
        )
        self.invalid = Counter(
            "closeloop_directory_invalid_records",
            "Directory topic records that are not directory events (skipped)",
            ["topic"],
            registry=metrics.registry,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the directory topics until `stop`; a broker error restarts the reading (the fold is idempotent)."""
        attempt = 0
        while not stop.is_set():
            try:
                await self._follow(stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker may be away; the routers wait for `ready`, nothing is guessed
                attempt += 1
                log.warning("directory feed failed; reading again", attempt=attempt, error=repr(exc))
                await asyncio.sleep(min(2**attempt, 10))

    async def _follow(self, stop: asyncio.Event) -> None:
        await ensure_topics(
            self._kafka, [TopicSpec(topic, retention_ms=-1, compacted=True, has_dlq=False) for topic in self._topics]
        )
        consumer = AIOKafkaConsumer(**reader_options(self._kafka, "directory"))
        await consumer.start()
        try:
            tps = [
                TopicPartition(topic, p)
                for topic in self._topics
                for p in range(await partition_count(self._kafka, topic))
            ]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            catching_up = {tp: end for tp, end in (await consumer.end_offsets(tps)).items() if end > 0}
            if not catching_up:
                self.ready.set()
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, records in batch.items():
                    for record in records:
                        if (ANNOUNCER_HEADER, self.announcer) not in (record.headers or ()):
                            self.fold(tp.topic, record.value)
                    if tp in catching_up and records and records[-1].offset + 1 >= catching_up[tp]:
                        del catching_up[tp]
                if not self.ready.is_set() and not catching_up:
                    log.info(
                        "directory loaded",
                        identities=len(self.directory.graph.identities()),
                        resources=len(self.directory.catalog),
                    )
                    self.ready.set()
        finally:
            await consumer.stop()

    def fold(self, topic: str, value: bytes | None) -> None:
        if value is None:
            return
        try:
            event = decode(value, expected=(IdentityLinked, ResourceCatalogued))
        except DecodeError as exc:
            log.warning("skipped a record that is not a directory event", topic=topic, reason=exc.reason)
            self.invalid.labels(topic).inc()
            return
        conflict = self.directory.apply(event)
        if conflict is not None:
            self.conflicts.labels(conflict.origin).inc()
            log.warning(
                "identity link conflict; identities not merged",
                names=list(conflict.names),
                identities=list(conflict.identities),
                origin=conflict.origin,
            )
