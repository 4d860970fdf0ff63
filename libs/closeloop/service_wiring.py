"""Wiring every database-backed service repeats in its composition root: the outbox relay, the database
readiness check and the ops server, each registered with the service's `Runtime` so shutdown finds it.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer

from closeloop.metrics import ServiceMetrics
from closeloop.ops import HttpServer, Readiness, ReadinessCheck, add_ops_routes
from closeloop.outbox import OutboxRelay
from closeloop.runtime import Runtime


def run_outbox_relay(
    runtime: Runtime,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    metrics: ServiceMetrics,
    *,
    batch_size: int,
    poll_interval_s: float,
) -> OutboxRelay:
    """Add a relay publishing the service's outbox to the runtime's loops (stopped with the runtime)."""
    relay = OutboxRelay(pool, producer, metrics, batch_size=batch_size, poll_interval_s=poll_interval_s)
    runtime.loops.append(relay.run)
    runtime.stoppers.append(relay.stop)
    return relay


def database_ready(pool: asyncpg.Pool) -> ReadinessCheck:
    """Ready while a pooled connection answers a trivial query."""

    async def check() -> bool:
        async with pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT 1"))

    return check


async def serve_ops(
    runtime: Runtime,
    app: web.Application,
    metrics: ServiceMetrics,
    readiness: Readiness,
    host: str,
    separate_port: int | None,
) -> HttpServer | None:
    """Where /healthz, /readyz and /metrics live for a service with a public listener: on that listener's
    `app` (separate_port None, the default), or on their own listener at host:separate_port, so the
    public port exposes the webhooks alone. Call before the public app starts."""
    if separate_port is None:
        add_ops_routes(app, metrics, readiness)
        return None
    return await start_ops_server(runtime, metrics, readiness, host, separate_port)


async def start_ops_server(
    runtime: Runtime, metrics: ServiceMetrics, readiness: Readiness, host: str, port: int
) -> HttpServer:
    """Serve /healthz, /readyz and /metrics; the runtime closes the server on shutdown."""
    app = web.Application()
    add_ops_routes(app, metrics, readiness)
    server = HttpServer(app, host, port)
    await server.start()
    runtime.closers.append(server.stop)
    return server
