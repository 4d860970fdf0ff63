"""Composition root of the connectors service: clients, stores, ingestion, HTTP hooks, raw-topic consumer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import yaml
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from closeloop.connector_sdk.aliases import load_alias_config, parse_alias_config
from closeloop.connector_sdk.dedupe import PostgresDedupe
from closeloop.consumer_loop import ConsumerLoop
from closeloop.db import create_pool
from closeloop.dead_letter import DeadLetterPublisher
from closeloop.kafka import consumer, producer
from closeloop.logging import configure_logging, get_logger
from closeloop.ops import HttpServer, Readiness
from closeloop.progress_beacon import ProgressBeacon, attach_beacon, producer_id
from closeloop.runtime import Runtime
from closeloop.service_wiring import serve_ops
from closeloop.settings import DatabaseSettings, KafkaSettings, ProgressSettings
from closeloop.topics import DAY_MS, DLQ_RETENTION_MS, TopicSpec, dlq, ensure_topics
from connectors.http_entry import HookRoutes, build_app
from connectors.identity import IdentityClassifier
from connectors.ingest_records import IngestRecords
from connectors.kafka_entry import RawTopicProcessor
from connectors.metrics import ConnectorMetrics
from connectors.model import ParseContext
from connectors.registry import CONNECTORS
from connectors.settings import ConnectorsSettings
from connectors.sink import SERVICE, GrantSink, HeldSink, KafkaGrantSink
from connectors.stores import PostgresLedger

log = get_logger(__name__)
PURGE_INTERVAL_S = 3600.0


def context_factory(settings: ConnectorsSettings) -> ParseContext:
    """A parse context template from settings; `received_at` is refreshed per batch by `IngestRecords`."""
    classifier = IdentityClassifier.from_patterns(
        agent=settings.agent_patterns, bot=settings.bot_patterns, service=settings.service_patterns
    )
    ignored = settings.k8s_ignored_token_requesters
    return ParseContext(
        classifier=classifier,
        okta_org=settings.okta_org,
        k8s_cluster=settings.k8s_cluster,
        k8s_ignored_token_requesters=re.compile(ignored) if ignored else None,
    )


def topic_specs(settings: ConnectorsSettings) -> list[TopicSpec]:
    names = [settings.grants_topic, *(settings.raw_topic(s) for s in settings.sources)]
    specs = [TopicSpec(name, retention_ms=30 * DAY_MS) for name in names]
    specs += [TopicSpec(dlq(name), retention_ms=DLQ_RETENTION_MS, has_dlq=False) for name in names]
    return specs


@dataclass
class Ingestion:
    """What ingesting needs, opened: used by the service, the CLI and the benchmark."""

    settings: ConnectorsSettings
    producer: AIOKafkaProducer
    pool: asyncpg.Pool
    metrics: ConnectorMetrics
    ingest: IngestRecords
    backfill: ProgressBeacon | None = None

    async def close(self) -> None:
        if self.backfill is not None:
            await self.backfill.close()
        await self.producer.stop()
        await self.pool.close()


async def open_ingestion(
    settings: ConnectorsSettings,
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    metrics: ConnectorMetrics | None = None,
    backfill_progress: ProgressSettings | None = None,
) -> Ingestion:
    """Clients and the ingestion pipeline. With `backfill_progress` (a replay), publishing old records holds
    the grants stream's watermark until `Ingestion.close`."""
    if settings.ensure_topics:
        await ensure_topics(kafka_settings, topic_specs(settings))
    pool = await create_pool(database_settings)
    kafka_producer = producer(kafka_settings, client_suffix="connectors")
    try:
        await kafka_producer.start()
    except Exception:
        await pool.close()
        raise
    metrics = metrics or ConnectorMetrics()
    template = context_factory(settings)

    def fresh_context() -> ParseContext:
        return ParseContext(
            classifier=template.classifier,
            received_at=datetime.now(UTC),
            okta_org=template.okta_org,
            k8s_cluster=template.k8s_cluster,
            k8s_ignored_token_requesters=template.k8s_ignored_token_requesters,
        )

    sink: GrantSink = KafkaGrantSink(kafka_producer, settings.grants_topic)
    beacon = None
    if backfill_progress is not None:
        name = f"{producer_id(SERVICE, backfill_progress)}/replay-{os.getpid()}"
        beacon = ProgressBeacon(
            kafka_producer,
            settings.grants_topic,
            name,
            f"closeloop/{SERVICE}",
            interval_s=backfill_progress.interval_s,
            backfill=True,
        )
        sink = HeldSink(sink, beacon)
    ingest = IngestRecords(
        {s: CONNECTORS[s] for s in settings.sources}, PostgresLedger(pool), sink, metrics, fresh_context
    )
    return Ingestion(settings, kafka_producer, pool, metrics, ingest, beacon)


def read_alias_file(path: Path) -> dict[str, list[str]]:
    text = path.read_text()
    document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: the alias file must hold a mapping with `identities`")
    return parse_alias_config(document)


async def load_aliases(pool: asyncpg.Pool, path: Path) -> int:
    mapping = read_alias_file(path)
    async with pool.acquire() as conn, conn.transaction():
        return await load_alias_config(conn, mapping)


@dataclass
class ConnectorsService:
    ingestion: Ingestion
    server: HttpServer
    runtime: Runtime
    consumer: AIOKafkaConsumer | None
    app: web.Application
    beacon: ProgressBeacon
    ops_server: HttpServer | None = None  # set when /metrics and /readyz have their own listener


async def _purge_forever(dedupe: PostgresDedupe, days: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            purged = await dedupe.purge_older_than(days)
            if purged:
                log.info("processed record ids purged", count=purged, older_than_days=days)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("purge of processed record ids failed; will retry", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PURGE_INTERVAL_S)


async def build_service(
    settings: ConnectorsSettings,
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    progress_settings: ProgressSettings | None = None,
) -> ConnectorsService:
    ingestion = await open_ingestion(settings, kafka_settings, database_settings)
    pool, kafka_producer, metrics = ingestion.pool, ingestion.producer, ingestion.metrics
    if settings.alias_file is not None:
        loaded = await load_aliases(pool, settings.alias_file)
        log.info("identity aliases loaded", names=loaded, file=str(settings.alias_file))

    readiness = Readiness()

    async def database_ready() -> bool:
        return bool(await pool.fetchval("SELECT 1"))

    async def broker_ready() -> bool:
        return bool(await kafka_producer.partitions_for(settings.grants_topic))

    readiness.add("database", database_ready)
    readiness.add("kafka", broker_ready)

    routes = HookRoutes(
        ingestion.ingest,
        sources=settings.sources,
        okta_secret=settings.okta_secret,
        hook_secret=settings.hook_secret,
        max_body_bytes=settings.max_body_bytes,
    )
    app = build_app(routes, settings.max_body_bytes)
    if settings.okta_secret is None or settings.hook_secret is None:
        log.warning(
            "hooks without a configured secret refuse every request",
            okta=settings.okta_secret is not None,
            others=settings.hook_secret is not None,
        )

    runtime = Runtime(name=SERVICE, shutdown_grace_s=settings.shutdown_grace_s)
    runtime.closers.append(ingestion.close)
    beacon = attach_beacon(
        runtime,
        kafka_producer,
        settings.grants_topic,
        SERVICE,
        progress_settings or ProgressSettings(),
        raw_consumer=settings.consume_raw_topics and bool(settings.sources),
        in_flight=ingestion.ingest.in_flight,
    )
    raw_consumer: AIOKafkaConsumer | None = None
    if settings.consume_raw_topics and settings.sources:
        processor = RawTopicProcessor(ingestion.ingest, {settings.raw_topic(s): s for s in settings.sources})
        raw_consumer = consumer(kafka_settings, settings.group_id, *processor.topics, client_suffix="connectors")
        await raw_consumer.start()
        runtime.closers.append(raw_consumer.stop)
        loop = ConsumerLoop(
            raw_consumer,
            processor,
            DeadLetterPublisher(kafka_producer, SERVICE),
            metrics,
            batch_size=settings.batch_size,
            marks=beacon.marks,
        )
        runtime.loops.append(loop.run)
        runtime.stoppers.append(loop.stop)

    stop_purge = asyncio.Event()
    dedupe = PostgresDedupe(pool)
    runtime.loops.append(lambda: _purge_forever(dedupe, settings.processed_retention_days, stop_purge))
    runtime.stoppers.append(stop_purge.set)

    ops_server = await serve_ops(runtime, app, metrics, readiness, settings.ops_host, settings.ops_separate_port)
    server = HttpServer(app, settings.ops_host, settings.ops_port)
    await server.start()
    runtime.closers.append(server.stop)
    log.info(
        "connectors started",
        hooks=f"http://{settings.ops_host}:{server.port}/v1/hooks/<source>",
        sources=settings.sources,
        grants_topic=settings.grants_topic,
    )
    return ConnectorsService(ingestion, server, runtime, raw_consumer, app, beacon, ops_server)


async def bootstrap() -> Runtime:
    settings = ConnectorsSettings()
    configure_logging(SERVICE, settings.log_level)
    service = await build_service(settings, KafkaSettings(), DatabaseSettings().for_service("connectors"))
    return service.runtime
