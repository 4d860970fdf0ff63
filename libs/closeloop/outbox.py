"""Transactional outbox: write events in the same transaction as the state change, relay them after.

`enqueue` is called inside the caller's transaction. `OutboxRelay` publishes committed rows in id order
and deletes them once the broker acknowledged them (at least once: a crash between the two re-sends,
and consumers deduplicate by event id). One relay is active at a time per database (an advisory
lock), which keeps per-key order; other instances wait as hot standbys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import cloudevents_headers, encode, kafka_key
from closeloop.logging import get_logger
from closeloop.metrics import ServiceMetrics

CHANNEL = "closeloop_outbox"
_Batch = tuple[list[asyncpg.Record], list["asyncio.Future[Any]"]]
RELAY_LOCK_ID = 0x6F757462  # arbitrary constant shared by every relay
log = get_logger(__name__)


async def enqueue(conn: asyncpg.Connection, topic: str, event: Envelope) -> None:
    headers = [[k, v.decode()] for k, v in cloudevents_headers(event)]
    await conn.execute(
        "INSERT INTO outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4::jsonb)",
        topic,
        kafka_key(event),
        encode(event),
        json.dumps(headers),
    )
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        metrics: ServiceMetrics,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        pipeline_depth: int = 8,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        # Batches per relay transaction; the next batch is read and sent while the previous awaits its acks.
        self._pipeline_depth = max(pipeline_depth, 1)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        listener = await self._pool.acquire()
        try:
            await listener.add_listener(CHANNEL, self._on_notify)
            while not self._stopping.is_set():
                try:
                    sent = await self.relay_once()
                except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
                    self._metrics.transient("outbox")
                    log.warning("outbox relay retrying", error=str(exc))
                    sent = 0
                    await asyncio.sleep(self._poll_interval_s)
                if sent < self._batch_size:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
        finally:
            try:
                await listener.remove_listener(CHANNEL, self._on_notify)
            finally:
                await self._pool.release(listener)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish committed outbox rows (up to `pipeline_depth` batches); return how many were published.

        Pipelined: while one batch waits for the broker's acknowledgements, the next is read and handed to
        the producer; each batch is deleted once acknowledged. All of it happens in one transaction under
        the relay lock, so a failure re-sends (never loses) the rows of the batches it did not commit.
        """
        published: list[asyncpg.Record] = []
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK_ID):
                return 0  # another relay is active
            in_flight: _Batch | None = None
            after_id = 0
            for _ in range(self._pipeline_depth):
                rows = await conn.fetch(
                    "SELECT id, topic, key, value, headers FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
                    after_id,
                    self._batch_size,
                )
                batch = await self._send(rows) if rows else None
                if in_flight is not None:
                    published += await self._settle(conn, in_flight)
                in_flight = batch
                if len(rows) < self._batch_size:
                    break
                after_id = rows[-1]["id"]
            if in_flight is not None:
                published += await self._settle(conn, in_flight)
        for row in published:
            self._metrics.published(row["topic"])
        return len(published)

    async def _send(self, rows: list[asyncpg.Record]) -> _Batch:
        """Hand `rows` to the producer in id order (which keeps per-key order); the acks come later."""
        futures = []
        for row in rows:
            headers = [(k, v.encode()) for k, v in json.loads(row["headers"])]
            futures.append(await self._producer.send(row["topic"], row["value"], key=row["key"], headers=headers))
        return rows, futures

    async def _settle(self, conn: asyncpg.Connection, batch: _Batch) -> list[asyncpg.Record]:
        """Wait until the broker acknowledged every row of `batch`, then delete them."""
        rows, futures = batch
        await asyncio.gather(*futures)
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        return rows
