"""PostgreSQL goes away under the running service and comes back: the service waits it out (transient
errors are retried, never dead-lettered), reconnects and carries on; nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

import pytest

from closeloop.contracts.entitlements import EntitlementStatus
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import dlq
from tests.integration.provisioning.conftest import RecordDb
from tests.integration.provisioning.harness import eventually, producer_for, publish, service_settings, start_service
from tests.integration.provisioning.tcp_proxy import TcpProxy
from tests.support.kafka_helpers import read_for
from tests.unit.provisioning.factories import key, ticket

pytestmark = pytest.mark.integration


@pytest.fixture
async def proxy(record_db: RecordDb) -> AsyncIterator[TcpProxy]:
    running = TcpProxy.for_dsn(record_db.settings.url.get_secret_value())
    await running.start()
    yield running
    await running.stop()


async def pending_count(db: RecordDb) -> int:
    async with db.app.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM entitlements WHERE status = 'pending'"))


async def test_the_service_rides_out_a_database_outage(
    kafka_settings: KafkaSettings, record_db: RecordDb, proxy: TcpProxy
) -> None:
    settings = service_settings()
    through_proxy = DatabaseSettings(url=proxy.rewrite(record_db.settings.url.get_secret_value()), pool_max_size=4)
    service = await start_service(settings, kafka_settings, through_proxy)
    first = key("vault:entity:before", "vault:policy:p", "attached")
    during = [key(f"vault:entity:during{i}", "vault:policy:p", "attached") for i in range(5)]
    try:
        async with producer_for(kafka_settings) as producer:
            await publish(producer, settings.tickets_topic, ticket(first))
            await eventually(lambda: _eq(pending_count(record_db), 1))

            await proxy.outage()
            await publish(producer, settings.tickets_topic, *(ticket(k) for k in during))
            await asyncio.sleep(2.0)  # the service keeps failing to reach the database meanwhile
            assert await pending_count(record_db) == 1
            assert service.failures() == []
            await proxy.restore()

            await eventually(lambda: _eq(pending_count(record_db), 6), timeout_s=60)

            async def outbox_drained() -> bool:
                async with record_db.app.acquire() as conn:
                    return int(await conn.fetchval("SELECT count(*) FROM outbox")) == 0

            await eventually(outbox_drained, timeout_s=60)
        assert service.failures() == []
    finally:
        await service.stop()
    assert await read_for(kafka_settings, dlq(settings.tickets_topic), 0.5) == []
    async with record_db.app.acquire() as conn:
        statuses = {r["status"] for r in await conn.fetch("SELECT status FROM entitlements")}
        assert statuses == {EntitlementStatus.PENDING.value}
        assert await conn.fetchval("SELECT count(*) FROM command_executions") == 6


async def _eq(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
