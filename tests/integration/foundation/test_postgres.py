"""Migrations, the least-privilege service role and the transactional outbox on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from closeloop.contracts.codec import decode, header_value
from closeloop.contracts.tickets import TicketEvent
from closeloop.db.migrate import apply_migrations
from closeloop.metrics import ServiceMetrics
from closeloop.outbox import OutboxRelay, enqueue
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import TopicSpec, ensure_topics
from tests.support.infra import Infra
from tests.support.kafka_helpers import read_topic, unique

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[2] / "data" / "contracts" / "itsm.ticket.transitioned.v1.json"


async def test_migrations_are_applied_once(migrated: Infra) -> None:
    assert await apply_migrations(migrated.migrate_url) == []


async def test_service_role_has_least_privilege(app_pool: asyncpg.Pool) -> None:
    async with app_pool.acquire() as conn:
        event_id = unique("evt")
        await conn.execute("INSERT INTO processed_events (consumer, event_id) VALUES ('test', $1)", event_id)
        assert await conn.fetchval("SELECT count(*) FROM processed_events WHERE event_id = $1", event_id) == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE not_allowed (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DROP TABLE processed_events")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM schema_migrations")
        assert not await conn.fetchval(
            "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
        )


async def test_outbox_publishes_committed_rows_only(
    app_pool: asyncpg.Pool, kafka_settings: KafkaSettings, database_settings: DatabaseSettings
) -> None:
    from closeloop import kafka

    topic = unique("test.outbox")
    await ensure_topics(kafka_settings, [TopicSpec(topic, 3_600_000)], partitions=1)
    template = decode(FIXTURE.read_bytes())
    assert isinstance(template, TicketEvent)
    committed = template.model_copy(update={"event_id": unique("committed"), "occurred_at": datetime.now(UTC)})
    rolled_back = template.model_copy(update={"event_id": unique("rolled-back")})

    async with app_pool.acquire() as conn:
        async with conn.transaction():
            await enqueue(conn, topic, committed)
        with pytest.raises(RuntimeError):  # noqa: PT012 - the rollback is what is under test
            async with conn.transaction():
                await enqueue(conn, topic, rolled_back)
                raise RuntimeError("the state change failed")

    producer = kafka.producer(kafka_settings)
    await producer.start()
    relay = OutboxRelay(app_pool, producer, ServiceMetrics("outbox-test"), poll_interval_s=0.05)
    task = asyncio.create_task(relay.run())
    try:
        records = await read_topic(
            kafka_settings,
            topic,
            until=lambda r: any(header_value(x.headers, "ce_id") == committed.event_id for x in r),
        )
        await asyncio.sleep(0.3)
        records = await read_topic(kafka_settings, topic, until=lambda r: False, timeout_s=1.0)
    finally:
        relay.stop()
        await task
        await producer.stop()
    ids = [header_value(r.headers, "ce_id") for r in records]
    assert ids.count(committed.event_id) == 1
    assert rolled_back.event_id not in ids
    assert decode(records[0].value) == committed
    async with app_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", topic) == 0


async def test_outbox_relay_pipelines_batches_in_order(
    app_pool: asyncpg.Pool, kafka_settings: KafkaSettings, database_settings: DatabaseSettings
) -> None:
    from closeloop import kafka

    topic = unique("test.outbox.pipelined")
    await ensure_topics(kafka_settings, [TopicSpec(topic, 3_600_000)], partitions=1)
    template = decode(FIXTURE.read_bytes())
    events = [template.model_copy(update={"event_id": unique(f"evt{i}")}) for i in range(45)]
    async with app_pool.acquire() as conn, conn.transaction():
        for event in events:
            await enqueue(conn, topic, event)

    producer = kafka.producer(kafka_settings)
    await producer.start()
    relay = OutboxRelay(app_pool, producer, ServiceMetrics("outbox-test"), batch_size=10, pipeline_depth=3)
    try:
        assert await relay.relay_once() == 30  # three batches of ten in one relay transaction
        while await relay.relay_once():
            pass
    finally:
        await producer.stop()
    records = await read_topic(kafka_settings, topic, until=lambda r: len(r) >= len(events))
    assert [header_value(r.headers, "ce_id") for r in records] == [e.event_id for e in events]  # id order kept
    async with app_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", topic) == 0
