"""Composition root of the expiry service: pool, producer, outbox relay, sweeper, trigger consumer, ops server."""

from __future__ import annotations

from dataclasses import dataclass

from closeloop.consumer_loop import ConsumerLoop
from closeloop.db import create_pool
from closeloop.dead_letter import DeadLetterPublisher
from closeloop.kafka import consumer as kafka_consumer
from closeloop.kafka import producer as kafka_producer
from closeloop.logging import configure_logging
from closeloop.ops import HttpServer, Readiness
from closeloop.record import ConfirmationPolicy
from closeloop.runtime import Runtime
from closeloop.service_wiring import database_ready, run_outbox_relay, start_ops_server
from closeloop.settings import DatabaseSettings, KafkaSettings, PolicySettings
from closeloop.topics import ensure_topics
from expiry.clock import Clock
from expiry.context import ExpiryContext
from expiry.kafka_entry import TriggerEntry
from expiry.metrics import SERVICE, ExpiryMetrics
from expiry.settings import ExpirySettings
from expiry.sweeper import Sweeper

# Readiness tolerates this many missed sweep intervals (plus a fixed margin for a long catch-up sweep).
SWEEP_STALE_INTERVALS = 3
SWEEP_STALE_MARGIN_S = 120.0


@dataclass
class ExpiryService:
    runtime: Runtime
    context: ExpiryContext
    sweeper: Sweeper
    server: HttpServer
    entry: TriggerEntry


async def build(
    settings: ExpirySettings | None = None,
    *,
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    policy: PolicySettings | None = None,
    clock: Clock | None = None,
) -> ExpiryService:
    settings = settings or ExpirySettings()
    kafka = kafka or KafkaSettings()
    database = database or DatabaseSettings().for_service("expiry")
    confirmation = ConfirmationPolicy.load((policy or PolicySettings()).file)
    metrics = ExpiryMetrics(SERVICE)
    runtime = Runtime(SERVICE, shutdown_grace_s=settings.shutdown_grace_s)
    try:
        if settings.ensure_topics:
            await ensure_topics(kafka, settings.topic_specs())
        pool = await create_pool(database)
        runtime.closers.append(pool.close)
        producer = kafka_producer(kafka, client_suffix=SERVICE)
        await producer.start()
        runtime.closers.append(producer.stop)

        ctx = ExpiryContext.from_settings(settings, pool, confirmation=confirmation, clock=clock, metrics=metrics)
        run_outbox_relay(
            runtime,
            pool,
            producer,
            metrics,
            batch_size=settings.outbox_batch_size,
            poll_interval_s=settings.outbox_poll_interval_s,
        )

        sweeper = Sweeper(ctx, settings.sweep_interval_s, slow_phase_interval_s=settings.recert_sweep_interval_s)
        if settings.sweep_enabled:
            runtime.loops.append(sweeper.run)
            runtime.stoppers.append(sweeper.stop)

        entry = TriggerEntry(ctx, settings)
        if settings.consume_triggers:
            consumer = kafka_consumer(kafka, settings.group_id, *entry.topics, client_suffix=SERVICE)
            await consumer.start()
            runtime.closers.append(consumer.stop)
            loop = ConsumerLoop(consumer, entry.process, DeadLetterPublisher(producer, SERVICE), metrics)
            runtime.loops.append(loop.run)
            runtime.stoppers.append(loop.stop)

        readiness = Readiness()

        async def broker_ready() -> bool:
            return bool(producer.client.cluster.brokers())

        async def sweeping() -> bool:
            if not settings.sweep_enabled:
                return True
            return sweeper.healthy(settings.sweep_interval_s * SWEEP_STALE_INTERVALS + SWEEP_STALE_MARGIN_S)

        readiness.add("database", database_ready(pool))
        readiness.add("kafka", broker_ready)
        readiness.add("sweep", sweeping)
        server = await start_ops_server(runtime, metrics, readiness, settings.ops_host, settings.ops_port)
    except BaseException:
        await runtime.close()
        raise
    return ExpiryService(runtime=runtime, context=ctx, sweeper=sweeper, server=server, entry=entry)


async def bootstrap() -> Runtime:
    settings = ExpirySettings()
    configure_logging(SERVICE, settings.log_level)
    service = await build(settings)
    return service.runtime
