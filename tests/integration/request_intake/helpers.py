"""Signing and posting webhooks, reading back exactly what is on a topic."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from closeloop.contracts.codec import decode
from closeloop.contracts.progress import is_stream_progress
from closeloop.contracts.tickets import TicketEvent
from closeloop.kafka import client_options
from closeloop.settings import KafkaSettings
from request_intake.signatures import sign_hub, sign_standard
from tests.integration.request_intake.conftest import GENERIC_SECRET, JIRA_SECRET, SN_SECRET, RunningIntake
from tests.support.kafka_helpers import unique


@dataclass
class Reply:
    status: int
    content_type: str
    body: Any


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> Reply:
    async with http.post(url, data=body, headers={"Content-Type": "application/json", **headers}) as response:
        text = await response.text()
        try:
            parsed: Any = json.loads(text)
        except json.JSONDecodeError:
            parsed = text
        return Reply(response.status, response.content_type, parsed)


async def post_standard(
    http: aiohttp.ClientSession,
    running: RunningIntake,
    system: str,
    body: bytes,
    *,
    delivery_id: str | None = None,
    at: datetime | None = None,
    secret: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    secret = secret or (SN_SECRET if system == "servicenow" else GENERIC_SECRET)
    signed = headers if headers is not None else sign_standard(secret, delivery_id or unique("msg"), body, at)
    return await _post(http, f"{running.url}/v1/webhooks/{system}", body, signed)


async def post_jira(
    http: aiohttp.ClientSession, running: RunningIntake, body: bytes, *, secret: str = JIRA_SECRET
) -> Reply:
    return await _post(http, f"{running.url}/v1/webhooks/jira", body, sign_hub(secret, body))


async def read_all(settings: KafkaSettings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything on `topic` up to its current end (acknowledged sends are all there), progress records aside."""
    consumer = AIOKafkaConsumer(
        topic, **client_options(settings, "read-all"), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tps = sorted(consumer.assignment())
        assert tps, f"{topic} has no partitions"
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 20
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(r for r in batch if not is_stream_progress(r.headers))
        return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
    finally:
        await consumer.stop()


def ticket_events(records: list[ConsumerRecord[bytes, bytes]], ticket_id: str) -> list[TicketEvent]:
    events = []
    for record in records:
        event = decode(record.value, TicketEvent)
        assert isinstance(event, TicketEvent)
        if event.ticket_id == ticket_id:
            events.append(event)
    return sorted(events, key=lambda e: (e.version or 0, e.occurred_at))


async def produce_raw(settings: KafkaSettings, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(**client_options(settings, "produce-raw"), acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"raw")
    finally:
        await producer.stop()


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode()
    return None
