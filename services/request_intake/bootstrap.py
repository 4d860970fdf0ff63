"""Composition root of request-intake: settings, clients, handlers, HTTP app, raw-topic consumer, runtime."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from closeloop.consumer_loop import ConsumerLoop
from closeloop.db import create_pool
from closeloop.kafka import consumer, producer
from closeloop.logging import configure_logging, get_logger
from closeloop.metrics import ServiceMetrics
from closeloop.ops import HttpServer, Readiness
from closeloop.progress_beacon import ProgressBeacon, attach_beacon
from closeloop.runtime import Runtime
from closeloop.service_wiring import serve_ops
from closeloop.settings import DatabaseSettings, KafkaSettings, ProgressSettings
from closeloop.topics import DAY_MS, DLQ_RETENTION_MS, TopicSpec, all_topic_specs, ensure_topics
from request_intake.deliveries import Deliveries
from request_intake.http_entry import WebhookEndpoint, build_app
from request_intake.ingest_ticket import IngestTicket
from request_intake.kafka_entry import RawTicketRecords
from request_intake.mapping import Mapping, load_mapping
from request_intake.publishing import KafkaTicketPublisher, RoutedDeadLetters
from request_intake.purge_deliveries import PurgeDeliveries
from request_intake.receive_webhook import ReceiveWebhook
from request_intake.settings import IntakeSettings
from request_intake.signatures import HubSignatureVerifier, StandardWebhooksVerifier, Verifier
from request_intake.ticket_state import TicketStates

SERVICE = "request-intake"
log = get_logger(__name__)


@dataclass
class Intake:
    """The assembled service; `runtime` runs it, `port` is the bound HTTP port."""

    runtime: Runtime
    server: HttpServer
    metrics: ServiceMetrics
    beacon: ProgressBeacon
    ops_server: HttpServer | None = None  # set when /metrics and /readyz have their own listener

    @property
    def port(self) -> int:
        return self.server.port


def verifiers(settings: IntakeSettings) -> dict[str, Verifier | None]:
    """One verifier per endpoint; None where no secret is configured (the endpoint then refuses everything)."""

    def standard(secret: SecretStr | None) -> Verifier | None:
        return StandardWebhooksVerifier(secret.get_secret_value()) if secret is not None else None

    jira_secret = settings.jira_secret
    return {
        "servicenow": standard(settings.servicenow_secret),
        "generic": standard(settings.generic_secret),
        "jira": HubSignatureVerifier(jira_secret.get_secret_value()) if jira_secret is not None else None,
    }


def topic_specs(settings: IntakeSettings) -> list[TopicSpec]:
    """The topics this instance uses, with the registry's settings where the names are the registry's."""
    known = {spec.name: spec for spec in all_topic_specs()}
    wanted = [(settings.tickets_topic, 30 * DAY_MS), (settings.dlq_topic, DLQ_RETENTION_MS)]
    wanted += [(topic, 7 * DAY_MS) for topic in settings.raw_topics()]
    return [known.get(name) or TopicSpec(name, retention_ms=retention, has_dlq=False) for name, retention in wanted]


def readiness_checks(kafka: AIOKafkaProducer, pool: asyncpg.Pool) -> Readiness:
    readiness = Readiness()

    async def broker() -> bool:
        metadata = await kafka.client.fetch_all_metadata()
        return bool(metadata.brokers())

    async def database() -> bool:
        return bool(await pool.fetchval("SELECT 1") == 1)

    readiness.add("kafka", broker)
    readiness.add("postgresql", database)
    return readiness


async def assemble(
    settings: IntakeSettings,
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    mapping: Mapping | None = None,
    progress_settings: ProgressSettings | None = None,
) -> Intake:
    """Start every client and the HTTP server; return the service ready to `serve()` (or to drive in tests)."""
    mapping = mapping or load_mapping(settings.mapping_file)
    metrics = ServiceMetrics(SERVICE)
    runtime = Runtime(SERVICE, shutdown_grace_s=settings.shutdown_grace_s)
    try:
        if settings.ensure_topics:
            await ensure_topics(kafka_settings, topic_specs(settings))
        pool = await create_pool(database_settings)
        runtime.closers.append(pool.close)
        kafka = producer(kafka_settings, "request-intake")
        await kafka.start()
        runtime.closers.append(kafka.stop)
        beacon = attach_beacon(
            runtime,
            kafka,
            settings.tickets_topic,
            SERVICE,
            progress_settings or ProgressSettings(),
            raw_consumer=settings.consume_raw_topics,
        )

        dead_letters = RoutedDeadLetters(kafka, SERVICE, settings.dlq_topic, settings.publish_timeout_s)
        ingest = IngestTicket(
            mapping,
            TicketStates(pool),
            KafkaTicketPublisher(kafka, settings.tickets_topic, settings.publish_timeout_s),
            metrics,
            beacon.in_flight,
        )
        deliveries = Deliveries(pool, settings.claim_lease_s)
        receive = ReceiveWebhook(
            ingest,
            deliveries,
            dead_letters,
            metrics,
            tickets_topic=settings.tickets_topic,
            replay_window_s=settings.replay_window_s,
            jira_replay_window_s=settings.jira_replay_window_s,
        )

        if settings.consume_raw_topics:
            raw = consumer(kafka_settings, settings.group_id, *settings.raw_topics(), client_suffix="request-intake")
            await raw.start()
            runtime.closers.append(raw.stop)
            loop = ConsumerLoop(
                raw, RawTicketRecords(ingest, settings.raw_topics()), dead_letters, metrics, marks=beacon.marks
            )
            runtime.loops.append(loop.run)
            runtime.stoppers.append(loop.stop)

        purge = PurgeDeliveries(deliveries, settings.purge_interval_s)
        runtime.loops.append(purge.run)
        runtime.stoppers.append(purge.stop)

        checked = verifiers(settings)
        for system, verifier in checked.items():
            if verifier is None:
                log.warning("no webhook secret configured; the endpoint answers 503", system=system)
        endpoint = WebhookEndpoint(receive, checked, metrics, max_body_bytes=settings.max_body_bytes)
        app = build_app(endpoint, settings.max_body_bytes)
        ops_server = await serve_ops(
            runtime, app, metrics, readiness_checks(kafka, pool), settings.ops_host, settings.ops_separate_port
        )
        server = HttpServer(app, settings.http_host, settings.http_port)
        await server.start()
        runtime.closers.append(server.stop)
        stopped = asyncio.Event()

        async def serve_http() -> None:
            await stopped.wait()  # aiohttp serves on its own; this loop only lives until asked to stop

        runtime.loops.append(serve_http)
        runtime.stoppers.append(stopped.set)
    except BaseException:
        await runtime.close()
        raise
    log.info(
        "request-intake started",
        http=f"{settings.http_host}:{server.port}",
        tickets_topic=settings.tickets_topic,
        dead_letter_topic=settings.dlq_topic,
        raw_topics=sorted(settings.raw_topics()) if settings.consume_raw_topics else [],
    )
    return Intake(runtime=runtime, server=server, metrics=metrics, beacon=beacon, ops_server=ops_server)


async def bootstrap() -> Runtime:
    settings = IntakeSettings()
    configure_logging(SERVICE, settings.log_level)
    intake = await assemble(settings, KafkaSettings(), DatabaseSettings().for_service("intake"))
    return intake.runtime
