"""provisioning: how fast the entitlement record applies changes, and how fast it bulk-loads.

1. Record changes applied/s through the record library (`RecordTransaction`): each change writes the
   entitlement row (version-guarded), the `entitlement.changed` event to the outbox, its processed-event
   id, and a hash-chained audit row; batched B changes per transaction (as a bulk import or a sweep
   does), and one change per transaction (as the Kafka consumer does per record). Baseline, same run and
   database: asyncpg `executemany` of the same entitlement rows (bare INSERTs, one transaction).
2. The whole service: N approved tickets on Kafka -> N pending entitlements with their grant commands
   relayed to Kafka (policy, record, outbox relay with acks=all). Baseline: producing N ticket-sized
   records with the same producer settings.
3. Bulk load: COPY of M entitlement rows into the table (with its indexes). M defaults to 1,000,000.

Everything runs in a throwaway schema (dropped afterwards). Sizes: CLOSELOOP_BENCH_PROVISIONING_COUNT
(changes, default 20000), _BATCH (default 500), _SERVICE_COUNT (default 2000), _BULK (default 1000000).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from closeloop import kafka
from closeloop.contracts.codec import encode
from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, TicketRef
from closeloop.contracts.identity import EntitlementKey
from closeloop.contracts.tickets import TicketEvent
from closeloop.db.migrate import record_migrations
from closeloop.record import Cause, EntitlementRecord, RecordTopics, RecordTransaction
from closeloop.record.rows import INSERT_SQL, row_params
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import TopicSpec, ensure_topics
from provisioning.bootstrap import bootstrap
from provisioning.settings import ProvisioningSettings

COUNT = int(os.environ.get("CLOSELOOP_BENCH_PROVISIONING_COUNT", "20000"))
BATCH = int(os.environ.get("CLOSELOOP_BENCH_PROVISIONING_BATCH", "500"))
SERVICE_COUNT = int(os.environ.get("CLOSELOOP_BENCH_PROVISIONING_SERVICE_COUNT", "2000"))
BULK = int(os.environ.get("CLOSELOOP_BENCH_PROVISIONING_BULK", "1000000"))
SINGLE = min(COUNT, 2000)  # one transaction per change is slow; a sample is enough for the rate
TICKET = TicketRef(system="servicenow", ticket_id="bench", ticket_number="RITMBENCH", kind="access_request")
TOPICS = RecordTopics(entitlements="bench.unpublished.entitlements", commands="bench.unpublished.commands")


def with_search_path(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    query["search_path"] = schema
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextlib.asynccontextmanager
async def throwaway_schema(database: DatabaseSettings) -> AsyncIterator[tuple[str, str]]:
    """A schema with the foundation and provisioning migrations; yields (app DSN, owner DSN)."""
    schema = f"bench_prov_{uuid.uuid4().hex[:8]}"
    owner = await asyncpg.connect(database.migration_dsn())
    try:
        await owner.execute(f'CREATE SCHEMA "{schema}"')
        await owner.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO closeloop_app')
        async with owner.transaction():
            await owner.execute(f'SET LOCAL search_path TO "{schema}"')
            for migration in record_migrations():
                await owner.execute(migration.sql)
        yield (
            with_search_path(database.url.get_secret_value(), schema),
            with_search_path(database.migration_dsn(), schema),
        )
    finally:
        await owner.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await owner.close()


def keys(prefix: str, count: int) -> list[EntitlementKey]:
    return [
        EntitlementKey(
            principal=f"okta:user:{prefix}{i}@example.com", resource="okta:group:00gbench", privilege="member"
        )
        for i in range(count)
    ]


def pending(key: EntitlementKey) -> EntitlementRecord:
    return EntitlementRecord.new(
        key,
        status=EntitlementStatus.PENDING,
        owner="owner@example.com",
        tickets=(TICKET,),
        recertification_interval=timedelta(days=90),
    )


async def apply_batched(pool: asyncpg.Pool, entitlements: list[EntitlementKey], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(entitlements), batch):
        async with pool.acquire() as conn, RecordTransaction(conn, actor="bench", topics=TOPICS) as tx:
            chunk = entitlements[start : start + batch]
            if batch == 1:
                fresh = (
                    {f"bench-{chunk[0].principal}"} if await tx.claim("bench", f"bench-{chunk[0].principal}") else set()
                )
            else:
                fresh = await tx.claim_many("bench", [f"bench-{k.principal}" for k in chunk])
            for key in chunk:
                cause = Cause(correlation_id="bench", event_id=f"bench-{key.principal}")
                if cause.event_id in fresh:
                    await tx.apply(None, pending(key), change=EntitlementChange.REQUESTED, cause=cause)
    return time.perf_counter() - started


async def executemany_baseline(pool: asyncpg.Pool, entitlements: list[EntitlementKey]) -> float:
    now = datetime.now(UTC)
    rows = [row_params(pending(k).evolve(version=1, created_at=now, updated_at=now)) for k in entitlements]
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(INSERT_SQL, rows)
    return time.perf_counter() - started


async def bulk_copy(owner_dsn: str, count: int) -> float:
    now = datetime.now(UTC)
    conn = await asyncpg.connect(owner_dsn)
    try:
        columns = (
            "key", "principal", "resource", "privilege", "source_system", "principal_kind", "owner", "tickets",
            "status", "last_change", "expires_at", "revocation_triggers", "version", "created_at", "updated_at",
        )  # fmt: skip
        tickets = '[{"system":"servicenow","ticket_id":"bench","ticket_number":"RITMBENCH","kind":"access_request"}]'

        def rows() -> Any:
            for i in range(count):
                principal = f"okta:user:bulk{i}@example.com"
                yield (
                    f"{principal}|okta:group:00gbulk{i % 1000}|member", principal, f"okta:group:00gbulk{i % 1000}", "member",
                    "okta", "human", f"owner{i % 5000}@example.com", tickets, "active", "activated",
                    now + timedelta(days=1 + i % 90), ["ticket", "expiry", "offboarding"], 2, now, now,
                )  # fmt: skip

        started = time.perf_counter()
        await conn.copy_records_to_table("entitlements", columns=columns, records=rows())
        return time.perf_counter() - started
    finally:
        await conn.close()


async def service_pipeline(
    kafka_settings: KafkaSettings, database: DatabaseSettings, app_dsn: str, count: int
) -> tuple[float, float]:
    """(seconds for the service to record `count` approvals and relay their commands, baseline seconds)."""
    prefix = f"bench.prov.{uuid.uuid4().hex[:8]}"
    settings = ProvisioningSettings(
        tickets_topic=f"{prefix}.tickets",
        grants_topic=f"{prefix}.grants",
        entitlements_topic=f"{prefix}.entitlements",
        commands_topic=f"{prefix}.commands",
        group_id=f"{prefix}.group",
        run_executors=False,
        ops_port=0,
        log_level="WARNING",
    )
    now = datetime.now(UTC)
    tickets = [
        TicketEvent.create(
            occurred_at=now,
            source="bench",
            correlation_id=f"c{i}",
            system="servicenow",
            ticket_id=f"t{i}",
            ticket_number=f"RITM{i:07d}",
            kind="access_request",
            transition="approved",
            state="approved",
            requested_for_kind="human",
            entitlement=key,
            requested_duration=timedelta(days=30),
            owner="owner@example.com",
        )
        for i, key in enumerate(keys("svc", count))
    ]
    producer = kafka.producer(kafka_settings)
    await producer.start()
    try:
        baseline_topic = f"{prefix}.baseline"
        await ensure_topics(kafka_settings, [TopicSpec(baseline_topic, retention_ms=3_600_000)])
        started = time.perf_counter()
        futures = [await producer.send(baseline_topic, encode(t), key=str(t.entitlement).encode()) for t in tickets]
        for future in futures:
            await future
        baseline = time.perf_counter() - started

        runtime = await bootstrap(settings, kafka_settings, DatabaseSettings(url=app_dsn, pool_max_size=4))
        tasks = [asyncio.create_task(loop()) for loop in runtime.loops]
        pool = await asyncpg.create_pool(app_dsn, min_size=1, max_size=1)
        try:
            await kafka.publish_many(producer, settings.tickets_topic, list(tickets))
            started = time.perf_counter()
            while True:
                async with pool.acquire() as conn:
                    recorded = await conn.fetchval(
                        "SELECT count(*) FROM entitlements WHERE principal LIKE 'okta:user:svc%'"
                    )
                    drained = await conn.fetchval("SELECT count(*) FROM outbox") == 0
                if recorded == count and drained:
                    break
                if time.perf_counter() - started > 600:
                    raise TimeoutError(f"the service recorded {recorded} of {count} approvals in 600 s")
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            await pool.close()
            for stop in runtime.stoppers:
                stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runtime.close()
        return elapsed, baseline
    finally:
        await producer.stop()


async def run(kafka_settings: KafkaSettings, database_settings: DatabaseSettings) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async with throwaway_schema(database_settings) as (app_dsn, owner_dsn):
        pool = await asyncpg.create_pool(app_dsn, min_size=1, max_size=2)
        try:
            baseline_s = await executemany_baseline(pool, keys("base", COUNT))
            batched_s = await apply_batched(pool, keys("batch", COUNT), BATCH)
            single_s = await apply_batched(pool, keys("single", SINGLE), 1)
            async with pool.acquire() as conn:  # those events were only measured, never meant for Kafka
                await conn.execute("DELETE FROM outbox")
        finally:
            await pool.close()
        baseline_rate, batched_rate, single_rate = COUNT / baseline_s, COUNT / batched_s, SINGLE / single_s
        rows += [
            {"metric": "executemany baseline (rows/s)", "value": baseline_rate, "unit": f"rows/s, {COUNT} rows"},
            {
                "metric": f"record changes applied, {BATCH}/transaction",
                "value": batched_rate,
                "unit": f"changes/s, {COUNT} changes (row + outbox + processed id + audit chain)",
                "ratio_to": "asyncpg executemany of the same rows",
                "ratio": batched_rate / baseline_rate,
            },
            {
                "metric": "record changes applied, 1/transaction",
                "value": single_rate,
                "unit": f"changes/s, {SINGLE} changes",
                "ratio_to": "asyncpg executemany of the same rows",
                "ratio": single_rate / baseline_rate,
            },
        ]
        service_s, produce_s = await service_pipeline(kafka_settings, database_settings, app_dsn, SERVICE_COUNT)
        rows.append(
            {
                "metric": "approved tickets -> pending entitlements + commands relayed",
                "value": SERVICE_COUNT / service_s,
                "unit": f"tickets/s, {SERVICE_COUNT} tickets, one transaction per ticket",
                "ratio_to": "aiokafka produce of the same tickets (acks=all)",
                "ratio": (SERVICE_COUNT / service_s) / (SERVICE_COUNT / produce_s),
            }
        )
        copy_s = await bulk_copy(owner_dsn, BULK)
        rows += [
            {"metric": f"bulk load {BULK:,} rows (COPY)", "value": copy_s, "unit": "s"},
            {"metric": "bulk load rate (COPY)", "value": BULK / copy_s, "unit": "rows/s"},
        ]
    return rows


if __name__ == "__main__":
    print(asyncio.run(run(KafkaSettings(), DatabaseSettings())))
