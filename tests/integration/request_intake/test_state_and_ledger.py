"""PostgreSQL state of the intake: the delivery ledger, per-ticket serialisation, crash between publish
and record (same event id re-published), concurrent duplicate deliveries."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from closeloop.contracts.tickets import TicketEvent
from closeloop.kafka import producer
from closeloop.metrics import ServiceMetrics
from closeloop.settings import KafkaSettings
from closeloop.topics import TopicSpec, ensure_topics
from request_intake.deliveries import Claim, ClaimRefusal, Deliveries
from request_intake.ingest_ticket import IngestTicket
from request_intake.publishing import KafkaTicketPublisher
from request_intake.signatures import sign_standard
from request_intake.ticket_state import TicketStates
from tests.integration.request_intake.conftest import SN_SECRET, RunningIntake
from tests.integration.request_intake.helpers import encode, post_standard, read_all, ticket_events
from tests.support.kafka_helpers import unique
from tests.unit.request_intake.fixtures import default_mapping, load

pytestmark = pytest.mark.integration


async def test_delivery_ledger_claim_refuse_release_complete(app_pool: asyncpg.Pool) -> None:
    ledger = Deliveries(app_pool, lease_s=30)
    delivery = unique("msg")
    claim = await ledger.claim("servicenow", delivery)
    assert isinstance(claim, Claim)
    assert await ledger.claim("servicenow", delivery) is ClaimRefusal.IN_PROGRESS
    await ledger.release(claim)
    again = await ledger.claim("servicenow", delivery)
    assert isinstance(again, Claim)
    await ledger.complete(again, datetime.now(UTC) + timedelta(minutes=10))
    assert await ledger.claim("servicenow", delivery) is ClaimRefusal.REPLAYED
    # The same id from another source is another delivery.
    assert isinstance(await ledger.claim("generic", delivery), Claim)
    # A stale claim's release (after someone else re-claimed) does not free the new claim.
    await ledger.release(claim)
    assert await ledger.claim("servicenow", delivery) is ClaimRefusal.REPLAYED


async def test_expired_entries_are_claimable_and_purged(app_pool: asyncpg.Pool) -> None:
    ledger = Deliveries(app_pool, lease_s=0.2)
    crashed = unique("msg")
    assert isinstance(await ledger.claim("servicenow", crashed), Claim)  # then the process "crashes"
    await asyncio.sleep(0.4)
    assert isinstance(await ledger.claim("servicenow", crashed), Claim)  # the lease ran out: a retry gets in
    done = unique("msg")
    claim = await ledger.claim("servicenow", done)
    assert isinstance(claim, Claim)
    await ledger.complete(claim, datetime.now(UTC) - timedelta(seconds=1))
    assert await ledger.purge_expired() >= 1
    remaining = await app_pool.fetchval(
        "SELECT count(*) FROM intake_webhook_deliveries WHERE delivery_id = ANY($1::text[])", [done]
    )
    assert remaining == 0


async def test_delivery_in_progress_is_409_with_retry_after(
    running: RunningIntake, http: aiohttp.ClientSession, app_pool: asyncpg.Pool
) -> None:
    body = encode(load("servicenow", "ritm_approved.json") | {"sys_id": uuid.uuid4().hex})
    headers = sign_standard(SN_SECRET, unique("msg"), body)
    claim = await Deliveries(app_pool, lease_s=30).claim("servicenow", headers["webhook-id"])
    assert isinstance(claim, Claim)
    reply = await post_standard(http, running, "servicenow", body, headers=headers)
    assert reply.status == 409
    assert reply.body["type"].endswith("/delivery-in-progress")


async def test_concurrent_deliveries_of_one_record_publish_once(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    sys_id = uuid.uuid4().hex
    body = encode(load("servicenow", "ritm_closed_complete.json") | {"sys_id": sys_id})
    replies = await asyncio.gather(*(post_standard(http, running, "servicenow", body) for _ in range(12)))
    assert [r.status for r in replies] == [202] * 12
    results = sorted(r.body["results"][0]["result"] for r in replies)
    assert results == ["duplicate"] * 11 + ["published"]
    assert len(ticket_events(await read_all(kafka_settings, running.tickets), sys_id)) == 1


async def test_concurrent_revisions_of_one_ticket_end_on_the_newest(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings, app_pool: asyncpg.Pool
) -> None:
    sys_id = uuid.uuid4().hex
    names = ["ritm_requested.json", "ritm_approved.json", "ritm_closed_complete.json"]
    bodies = [encode(load("servicenow", name) | {"sys_id": sys_id}) for name in names]
    replies = await asyncio.gather(*(post_standard(http, running, "servicenow", b) for b in reversed(bodies)))
    assert {r.status for r in replies} == {202}
    events = ticket_events(await read_all(kafka_settings, running.tickets), sys_id)
    # Whatever the arrival order, versions only go up and the ticket ends closed.
    versions = [e.version for e in events if e.version is not None]
    assert len(versions) == len(events)
    assert versions == sorted(set(versions))
    assert events[-1].transition.value == "closed_complete"
    phase = await app_pool.fetchval(
        "SELECT phase FROM intake_ticket_state WHERE system = 'servicenow' AND ticket_key = $1", sys_id
    )
    assert phase == "closed_complete"


class CrashAfterPublish:
    """A publisher that publishes, then 'crashes' before the state is recorded, once."""

    def __init__(self, inner: KafkaTicketPublisher) -> None:
        self._inner = inner
        self.topic = inner.topic
        self.crashed = False

    async def publish(self, event: TicketEvent, key: bytes) -> None:
        await self._inner.publish(event, key)
        if not self.crashed:
            self.crashed = True
            raise ConnectionResetError("process died after the broker acknowledged")


async def test_crash_between_publish_and_record_republishes_the_same_event_id(
    kafka_settings: KafkaSettings, app_pool: asyncpg.Pool
) -> None:
    topic = unique("it.intake.crash")
    await ensure_topics(kafka_settings, [TopicSpec(topic, retention_ms=3_600_000, has_dlq=False)])
    kafka = producer(kafka_settings)
    await kafka.start()
    try:
        publisher = CrashAfterPublish(KafkaTicketPublisher(kafka, topic, timeout_s=10))
        ingest = IngestTicket(default_mapping(), TicketStates(app_pool), publisher, ServiceMetrics("it-intake"))
        payload: dict[str, Any] = load("servicenow", "ritm_approved.json") | {"sys_id": uuid.uuid4().hex}
        with pytest.raises(ConnectionResetError):
            await ingest.ingest("servicenow", payload, "test")
        # Redelivery (webhook retry or uncommitted Kafka offset): the state was not recorded, so it publishes
        # again, with the same deterministic id that consumers deduplicate on.
        [outcome] = await ingest.ingest("servicenow", payload, "test")
        assert outcome.result == "published"
        [third] = await ingest.ingest("servicenow", payload, "test")
        assert third.result == "duplicate"
    finally:
        await kafka.stop()
    events = ticket_events(await read_all(kafka_settings, topic), payload["sys_id"])
    assert len(events) == 2
    assert events[0].event_id == events[1].event_id == outcome.event_id
