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

import asyncpg
from aiokafka import AIOKafkaProducer

from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import cloudevents_headers, encode, kafka_key
from closeloop.logging import get_logger
from closeloop.metrics import ServiceMetrics

CHANNEL = "closeloop_outbox"
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
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
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
        """Publish one batch of committed outbox rows; return how many were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK_ID):
                return 0  # another relay is active
            rows = await conn.fetch(
                "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1", self._batch_size
            )
            if not rows:
                return 0
            futures = []
            for row in rows:
                headers = [(k, v.encode()) for k, v in json.loads(row["headers"])]
                futures.append(await self._producer.send(row["topic"], row["value"], key=row["key"], headers=headers))
            for future in futures:
                await future
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        for row in rows:
            self._metrics.published(row["topic"])
        return len(rows)
