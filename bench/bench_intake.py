"""request-intake: accepted webhooks per second and p99 ack latency, against a bare aiohttp handler.

Both servers run on loopback in this process and are driven by the same aiohttp client with the same
concurrency and a bounded number of requests. Every intake request is a signed ServiceNow RITM for a new
ticket, so each one does the full path: signature check, replay claim, normalization, per-ticket lock,
Kafka publish with acks=all, state write, claim completion. Bodies are signed before the clock starts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from closeloop.kafka import admin_client
from closeloop.ops import HttpServer
from closeloop.settings import DatabaseSettings, KafkaSettings
from request_intake.bootstrap import assemble
from request_intake.settings import IntakeSettings
from request_intake.signatures import sign_standard

REQUESTS = 1500
WARMUP = 100
CONCURRENCY = 16
FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "servicenow" / "ritm_approved.json"

Request = tuple[bytes, dict[str, str]]


def signed_requests(secret: str, count: int) -> tuple[list[Request], list[str]]:
    template = json.loads(FIXTURE.read_text())
    requests, ids = [], []
    for _ in range(count):
        sys_id = uuid.uuid4().hex
        body = json.dumps({**template, "sys_id": sys_id}).encode()
        headers = {"Content-Type": "application/json", **sign_standard(secret, f"bench_{sys_id}", body)}
        requests.append((body, headers))
        ids.append(sys_id)
    return requests, ids


async def drive(url: str, requests: Sequence[Request], concurrency: int) -> tuple[float, list[float], int]:
    """(elapsed seconds, per-request latencies, number of 202s) for sending every request."""
    latencies: list[float] = []
    accepted = 0
    cursor = iter(requests)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal accepted
            for body, headers in cursor:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status == 202:
                        accepted += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, accepted


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[98]


async def bare_server() -> HttpServer:
    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "accepted"}, status=202)

    app = web.Application()
    app.router.add_post("/v1/webhooks/servicenow", accept)
    server = HttpServer(app, "127.0.0.1", 0)
    await server.start()
    return server


async def run(kafka_settings: KafkaSettings, database_settings: DatabaseSettings) -> list[dict[str, Any]]:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    suffix = uuid.uuid4().hex[:10]
    settings = IntakeSettings(
        http_port=0,
        tickets_topic=f"bench.intake.tickets.{suffix}",
        servicenow_raw_topic=f"bench.intake.raw.servicenow.{suffix}",
        jira_raw_topic=f"bench.intake.raw.jira.{suffix}",
        generic_raw_topic=f"bench.intake.raw.generic.{suffix}",
        consume_raw_topics=False,
        servicenow_secret=secret,
        generic_secret=secret,
        jira_secret=secrets.token_hex(16),
    )
    warm, _ = signed_requests(secret, WARMUP)
    measured, ticket_ids = signed_requests(secret, REQUESTS)
    bare = await bare_server()
    intake = await assemble(settings, kafka_settings, database_settings)
    try:
        bare_url = f"http://127.0.0.1:{bare.port}/v1/webhooks/servicenow"
        intake_url = f"http://127.0.0.1:{intake.port}/v1/webhooks/servicenow"
        await drive(bare_url, warm, CONCURRENCY)
        await drive(intake_url, warm, CONCURRENCY)
        bare_s, bare_lat, bare_ok = await drive(bare_url, measured, CONCURRENCY)
        intake_s, intake_lat, intake_ok = await drive(intake_url, measured, CONCURRENCY)
    finally:
        await intake.runtime.close()
        await bare.stop()
        await _cleanup(kafka_settings, database_settings, settings, ticket_ids)
    if intake_ok != REQUESTS or bare_ok != REQUESTS:
        raise RuntimeError(f"not every request was accepted: intake {intake_ok}, bare {bare_ok} of {REQUESTS}")
    intake_rate, bare_rate = intake_ok / intake_s, bare_ok / bare_s
    intake_p99, bare_p99 = p99(intake_lat) * 1000, p99(bare_lat) * 1000
    common = {"benchmark": "bench_intake"}
    return [
        {**common, "metric": "accepted webhooks/s (signed RITM, acks=all)", "value": intake_rate, "unit": "req/s",
         "ratio_to": "bare aiohttp handler req/s", "ratio": intake_rate / bare_rate},
        {**common, "metric": "p99 ack latency", "value": intake_p99, "unit": "ms",
         "ratio_to": "bare aiohttp handler p99", "ratio": intake_p99 / bare_p99},
        {**common, "metric": "p50 ack latency", "value": statistics.median(intake_lat) * 1000, "unit": "ms"},
        {**common, "metric": "bare aiohttp handler", "value": bare_rate, "unit": "req/s"},
        {**common, "metric": "bare aiohttp handler p99", "value": bare_p99, "unit": "ms"},
        {**common, "metric": f"requests per side (concurrency {CONCURRENCY})", "value": float(REQUESTS), "unit": "requests"},
    ]  # fmt: skip


async def _cleanup(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, settings: IntakeSettings, ids: list[str]
) -> None:
    admin = admin_client(kafka_settings)
    await admin.start()
    try:
        await admin.delete_topics([settings.tickets_topic, *settings.raw_topics(), *settings.dead_letter_topics()])
    finally:
        await admin.close()
    conn = await asyncpg.connect(database_settings.migration_dsn())
    try:
        await conn.execute(
            "DELETE FROM intake_ticket_state WHERE system = 'servicenow' AND ticket_key = ANY($1::text[])", ids
        )
        await conn.execute(
            "DELETE FROM intake_webhook_deliveries WHERE source = 'servicenow' AND delivery_id LIKE 'bench\\_%'"
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    for row in asyncio.run(run(KafkaSettings(), DatabaseSettings())):
        print(row)
