"""expiry: N entitlements expiring at the same instant -> time until every revoke command is on Kafka.

Rows are bulk-inserted with COPY (as the schema owner) into a throwaway schema, all expiring at one
instant a few seconds ahead; the expiry service (one worker, then two workers on a fresh copy) is started
before that instant, and a reader on the commands topic stops the clock when it has seen a revoke for
every entitlement. Each revoke is a full record change: row update, entitlement event and command in the
outbox, hash-chained audit rows, then the outbox relay to Kafka with acks=all.

Baseline, same run and broker: producing the same number of command-sized records with the same
producer settings (acks=all, idempotent). N comes from `CLOSELOOP_BENCH_EXPIRY_COUNT` (default 100000).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from aiokafka import AIOKafkaConsumer

from closeloop import kafka
from closeloop.contracts.codec import encode
from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import RevocationTrigger
from closeloop.contracts.identity import EntitlementKey
from closeloop.db.migrate import apply_migrations
from closeloop.kafka import client_options
from closeloop.record.bulk import copy_active_entitlements
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import TopicSpec, ensure_topics
from expiry.bootstrap import build
from expiry.settings import ExpirySettings

COUNT = int(os.environ.get("CLOSELOOP_BENCH_EXPIRY_COUNT", "100000"))
LEAD_S = 8.0  # services start, join and idle before the common expiry instant
BATCH = 500


def with_search_path(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    query["search_path"] = schema
    return urlunsplit(parts._replace(query=urlencode(query)))


def keys(count: int) -> list[EntitlementKey]:
    return [
        EntitlementKey(principal=f"okta:user:bench{i}@example.com", resource="okta:group:00gbench", privilege="member")
        for i in range(count)
    ]


async def seed(owner_dsn: str, entitlements: list[EntitlementKey], expires_at: datetime) -> float:
    """COPY the rows; return the seconds it took."""
    created = expires_at - timedelta(minutes=1)
    conn = await asyncpg.connect(owner_dsn)
    started = time.perf_counter()
    try:
        await copy_active_entitlements(conn, entitlements, expires_at=expires_at, created_at=created)
        await conn.execute("ANALYZE entitlements")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def count_revokes(
    settings: KafkaSettings, topic: str, expected: int, ready: asyncio.Event
) -> tuple[float, float]:
    """Read `topic` from the start until `expected` distinct keys were seen; wall times of the first and last."""
    consumer = AIOKafkaConsumer(
        topic, **client_options(settings, "bench-read"), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: set[bytes] = set()
    first: float | None = None
    try:
        await consumer.seek_to_beginning()
        ready.set()
        while len(seen) < expected:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                if records and first is None:
                    first = time.time()
                seen.update(r.key for r in records if r.key is not None)
        return first or time.time(), time.time()
    finally:
        await consumer.stop()


async def swept_at(dsn: str, expected: int, after: float) -> float:
    """Wall time at which every row was in `revoking` (polled each 0.5 s, from just before the instant)."""
    conn = await asyncpg.connect(dsn)
    try:
        await asyncio.sleep(max(after - time.time() - 0.5, 0))
        while True:
            done = await conn.fetchval("SELECT count(*) FROM entitlements WHERE status = 'revoking'")
            if done >= expected:
                return time.time()
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def expire_at_once(
    kafka_settings: KafkaSettings, database: DatabaseSettings, count: int, workers: int
) -> dict[str, float]:
    schema = f"bench_expiry_{uuid.uuid4().hex[:8]}"
    owner_dsn = database.migration_dsn()
    admin = await asyncpg.connect(owner_dsn)
    tag = uuid.uuid4().hex[:8]
    settings = ExpirySettings(
        tickets_topic=f"bench.expiry.tickets.{tag}",
        grants_topic=f"bench.expiry.grants.{tag}",
        entitlements_topic=f"bench.expiry.entitlements.{tag}",
        commands_topic=f"bench.expiry.commands.{tag}",
        group_id=f"bench.expiry.{tag}",
        ops_port=0,
        consume_triggers=False,
        notice_offsets=(),
        recert_interval_human=None,
        recert_interval_nhi=None,
        sweep_interval_s=1.0,
        sweep_batch_size=BATCH,
        log_level="WARNING",
    )
    services = []
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        await admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO closeloop_app')
        await apply_migrations(with_search_path(owner_dsn, schema))
        scoped = DatabaseSettings(
            url=with_search_path(database.url.get_secret_value(), schema),
            migrate_url=with_search_path(owner_dsn, schema),
            pool_max_size=4,
        )
        instant = datetime.now(UTC) + timedelta(seconds=LEAD_S + count / 50_000)
        copy_s = await seed(scoped.migration_dsn(), keys(count), instant)
        services = [await build(settings, kafka=kafka_settings, database=scoped) for _ in range(workers)]
        tasks = [asyncio.create_task(loop()) for s in services for loop in s.runtime.loops]
        ready = asyncio.Event()
        reader = asyncio.create_task(count_revokes(kafka_settings, settings.commands_topic, count, ready))
        await ready.wait()
        swept = asyncio.create_task(swept_at(scoped.url.get_secret_value(), count, instant.timestamp()))
        first_at, done_at = await reader
        elapsed = done_at - instant.timestamp()
        sweep_s = await swept - instant.timestamp()
        per_worker = [
            s.context.metrics.actions.labels("expiry", "revoke_issued", "expiry")._value.get() for s in services
        ]
        for s in services:
            for stop in s.runtime.stoppers:
                stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "elapsed_s": elapsed,
            "first_s": first_at - instant.timestamp(),
            "sweep_s": sweep_s,
            "copy_s": copy_s,
            "min_worker_share": min(per_worker) / count,
        }
    finally:
        for s in services:
            await s.runtime.close()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
        await _delete_topics(kafka_settings, settings)


async def raw_produce(kafka_settings: KafkaSettings, count: int) -> float:
    """The same number of command-sized records through a plain producer (acks=all, idempotent)."""
    topic = f"bench.expiry.baseline.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_settings, [TopicSpec(topic, retention_ms=3_600_000)])
    sample = ProvisioningCommand.create(
        occurred_at=datetime.now(UTC),
        source="closeloop/expiry",
        correlation_id=str(uuid.uuid4()),
        command_id=str(uuid.uuid4()),
        action=CommandAction.REVOKE,
        key=keys(1)[0],
        target_system="okta",
        reason=RevocationTrigger.EXPIRY,
        confirm_by=datetime.now(UTC),
    )
    value = encode(sample)
    producer = kafka.producer(kafka_settings, client_suffix="bench-expiry-baseline")
    await producer.start()
    try:
        started = time.perf_counter()
        for offset in range(0, count, BATCH):
            futures = [
                await producer.send(topic, value, key=f"k{i}".encode())
                for i in range(offset, min(offset + BATCH, count))
            ]
            await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()
        admin = kafka.admin_client(kafka_settings)
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()


async def _delete_topics(kafka_settings: KafkaSettings, settings: ExpirySettings) -> None:
    admin = kafka.admin_client(kafka_settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [s.name for s in settings.topic_specs() if s.name in existing]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def run(kafka_settings: KafkaSettings, database_settings: DatabaseSettings) -> list[dict[str, Any]]:
    count = COUNT
    baseline_s = await raw_produce(kafka_settings, count)
    one = await expire_at_once(kafka_settings, database_settings, count, workers=1)
    two = await expire_at_once(kafka_settings, database_settings, count, workers=2)
    label = f"{count} expiring at once"
    rows: list[dict[str, Any]] = [
        {
            "benchmark": "expiry",
            "metric": f"{label}: all revokes on Kafka, 1 worker",
            "value": one["elapsed_s"],
            "unit": "s",
            "ratio_to": "raw produce of the same count",
            "ratio": one["elapsed_s"] / baseline_s,
        },
        {
            "benchmark": "expiry",
            "metric": f"{label}: all revokes on Kafka, 2 workers",
            "value": two["elapsed_s"],
            "unit": "s",
            "ratio_to": "1 worker",
            "ratio": two["elapsed_s"] / one["elapsed_s"],
        },
    ]
    for name, result in (("1 worker", one), ("2 workers", two)):
        rows += [
            {
                "benchmark": "expiry",
                "metric": f"{label}: revokes per second, {name}",
                "value": count / result["elapsed_s"],
                "unit": "revokes/s",
            },
            {
                "benchmark": "expiry",
                "metric": f"{label}: first revoke on Kafka, {name}",
                "value": result["first_s"],
                "unit": "s after expiry",
            },
            {
                "benchmark": "expiry",
                "metric": f"{label}: all rows revoking in PostgreSQL, {name}",
                "value": result["sweep_s"],
                "unit": "s after expiry",
            },
        ]
    rows += [
        {
            "benchmark": "expiry",
            "metric": f"{label}: smaller worker's share, 2 workers",
            "value": two["min_worker_share"],
            "unit": "fraction",
        },
        {
            "benchmark": "expiry",
            "metric": f"baseline: raw produce of {count} records",
            "value": baseline_s,
            "unit": "s",
        },
        {"benchmark": "expiry", "metric": f"COPY of {count} rows (setup)", "value": one["copy_s"], "unit": "s"},
    ]
    return rows
