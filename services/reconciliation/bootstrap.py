"""Composition root of the reconciliation service: settings, topics, the faust app, ops server, webhook sink."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from closeloop import topics
from closeloop.logging import configure_logging, get_logger
from closeloop.metrics import ServiceMetrics
from closeloop.ops import HttpServer, Readiness, add_ops_routes
from closeloop.runtime import Runtime
from closeloop.settings import KafkaSettings, state_dir
from reconciliation.app import SERVICE, Reconciler
from reconciliation.settings import ReconciliationSettings
from reconciliation.topic_meta import partition_count

log = get_logger(__name__)

DEFAULT_RETENTION = {spec.name: spec for spec in topics.TOPICS}


def topic_specs(settings: ReconciliationSettings) -> list[topics.TopicSpec]:
    """The topics the reconciler reads and writes, with their dead-letter topics (created when missing)."""
    specs = []
    for name, fallback in (
        (settings.tickets_topic, topics.ITSM_TICKETS),
        (settings.grants_topic, topics.IAM_GRANTS),
        (settings.entitlements_topic, topics.ENTITLEMENTS),
        (settings.alerts_topic, topics.DRIFT_ALERTS),
    ):
        template = DEFAULT_RETENTION[fallback]
        specs.append(topics.TopicSpec(name, retention_ms=template.retention_ms, compacted=template.compacted))
        # The alerts topic gets a DLQ too: the webhook sink dead-letters alerts it cannot deliver.
        specs.append(topics.TopicSpec(topics.dlq(name), retention_ms=topics.DLQ_RETENTION_MS, has_dlq=False))
    return specs


def data_dir(settings: ReconciliationSettings) -> Path:
    folder = settings.data_dir or state_dir() / SERVICE / settings.app_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def build(
    settings: ReconciliationSettings, kafka: KafkaSettings, metrics: ServiceMetrics
) -> tuple[Reconciler, Readiness]:
    await topics.ensure_topics(kafka, topic_specs(settings))
    reconciler = Reconciler(
        settings,
        kafka,
        metrics,
        grants_partitions=await partition_count(kafka, settings.grants_topic),
        tickets_partitions=await partition_count(kafka, settings.tickets_topic),
        data_dir=data_dir(settings),
    )
    readiness = Readiness()
    readiness.add("join", reconciler.ready)
    return reconciler, readiness


@asynccontextmanager
async def in_process(
    settings: ReconciliationSettings, kafka: KafkaSettings, *, timeout_s: float = 60
) -> AsyncIterator[Reconciler]:
    """A reconciler in this event loop, ready (assigned, recovered) when the block starts, stopped after it
    (tests and benchmarks)."""
    reconciler, _ = await build(settings, kafka, ServiceMetrics(SERVICE))
    task = asyncio.create_task(reconciler.run())
    deadline = time.monotonic() + timeout_s
    while not await reconciler.ready():
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise TimeoutError("reconciler did not become ready")
        await asyncio.sleep(0.1)
    try:
        yield reconciler
    finally:
        reconciler.request_stop()
        await asyncio.wait_for(task, timeout_s)


async def bootstrap() -> Runtime:
    settings = ReconciliationSettings()
    kafka = KafkaSettings()
    configure_logging(SERVICE, settings.log_level)
    metrics = ServiceMetrics(SERVICE)
    reconciler, readiness = await build(settings, kafka, metrics)

    ops = web.Application()
    add_ops_routes(ops, metrics, readiness)
    server = HttpServer(ops, settings.ops_host, settings.ops_port)
    await server.start()
    log.info("ops server listening", port=server.port, app_id=settings.app_id)

    runtime = Runtime(SERVICE, shutdown_grace_s=settings.shutdown_grace_s)
    runtime.loops.append(reconciler.run)
    runtime.stoppers.append(reconciler.request_stop)
    runtime.closers.append(server.stop)
    if settings.webhook_url:
        from reconciliation.sinks.webhook import build_webhook_sink

        sink = await build_webhook_sink(settings, kafka, metrics)
        runtime.loops.append(sink.run)
        runtime.stoppers.append(sink.stop)
        runtime.closers.append(sink.close)
    return runtime
