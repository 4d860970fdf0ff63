"""HTTP -> Kafka: signed deliveries become exactly one TicketEvent per transition; forged, stale, replayed,
oversized and malformed deliveries are refused with nothing published except the dead letter."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from closeloop.contracts.tickets import TicketKind, TicketTransition
from closeloop.settings import DatabaseSettings, KafkaSettings
from request_intake.signatures import sign_standard
from tests.integration.request_intake.conftest import SN_SECRET, RunningIntake, start_intake
from tests.integration.request_intake.helpers import (
    encode,
    header,
    post_jira,
    post_standard,
    read_all,
    ticket_events,
)
from tests.unit.request_intake.fixtures import load

pytestmark = pytest.mark.integration

T = TicketTransition


def ritm(name: str, sys_id: str) -> dict[str, Any]:
    record: dict[str, Any] = load("servicenow", name)
    record["sys_id"] = sys_id
    return record


def new_sys_id() -> str:
    return uuid.uuid4().hex


def jira_payload(name: str, issue_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = load("jira", name)
    payload["issue"]["id"] = issue_id
    return payload


async def test_signed_ritm_approved_then_closed_complete_gives_one_event_each(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings, app_pool: asyncpg.Pool
) -> None:
    sys_id = new_sys_id()
    approved = await post_standard(http, running, "servicenow", encode(ritm("ritm_approved.json", sys_id)))
    assert approved.status == 202, approved.body
    assert approved.body["results"][0]["result"] == "published"
    assert approved.body["results"][0]["transition"] == "approved"

    closed_body = encode(ritm("ritm_closed_complete.json", sys_id))
    closed = await post_standard(http, running, "servicenow", closed_body)
    assert closed.status == 202, closed.body
    # The same record again under a new delivery id (ServiceNow re-sent it): accepted, nothing new.
    again = await post_standard(http, running, "servicenow", closed_body)
    assert again.status == 202
    assert again.body["results"][0]["result"] == "duplicate"

    records = await read_all(kafka_settings, running.tickets)
    events = ticket_events(records, sys_id)
    assert [e.transition for e in events] == [T.APPROVED, T.CLOSED_COMPLETE]
    first, second = events
    assert first.previous_state is None
    assert second.previous_state == "state=1 approval=approved stage=fulfillment"
    assert second.state == "state=3 approval=approved stage=complete"
    assert second.version == 9
    assert second.kind is TicketKind.ACCESS_REQUEST
    assert second.closed_at == datetime(2026, 1, 6, 10, 0, tzinfo=UTC)
    assert str(second.entitlement) == "okta:user:alice.smith@example.com|okta:group:00g1engadmins|member"
    assert [a.approver for a in second.approvers] == ["carol.approver@example.com"]
    # Keyed by the entitlement key; CloudEvents headers carry the envelope.
    [record] = [r for r in records if r.value and sys_id.encode() in r.value and b"closed_complete" in r.value]
    assert record.key == str(second.entitlement).encode()
    assert header(record, "ce_id") == second.event_id
    assert header(record, "ce_type") == "itsm.ticket.transitioned"

    row = await app_pool.fetchrow(
        "SELECT phase, version, last_event_id FROM intake_ticket_state WHERE system = 'servicenow' AND ticket_key = $1",
        sys_id,
    )
    assert row is not None
    assert (row["phase"], row["version"], row["last_event_id"]) == ("closed_complete", 9, second.event_id)


async def test_out_of_order_delivery_never_moves_the_ticket_back(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    sys_id = new_sys_id()
    closed = await post_standard(http, running, "servicenow", encode(ritm("ritm_closed_complete.json", sys_id)))
    late = await post_standard(http, running, "servicenow", encode(ritm("ritm_approved.json", sys_id)))
    assert (closed.status, late.status) == (202, 202)
    assert late.body["results"][0]["result"] == "stale"
    events = ticket_events(await read_all(kafka_settings, running.tickets), sys_id)
    assert [e.transition for e in events] == [T.CLOSED_COMPLETE]


async def test_cancelled_ritm_and_reopening(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    sys_id = new_sys_id()
    for name in ("ritm_requested.json", "ritm_closed_complete_stage_cancelled.json"):
        assert (await post_standard(http, running, "servicenow", encode(ritm(name, sys_id)))).status == 202
    reopened = ritm("ritm_approved.json", sys_id)
    reopened.update({"state": "2", "sys_mod_count": "8", "sys_updated_on": "2026-01-05 12:00:00"})
    assert (await post_standard(http, running, "servicenow", encode(reopened))).status == 202
    events = ticket_events(await read_all(kafka_settings, running.tickets), sys_id)
    assert [e.transition for e in events] == [T.REQUESTED, T.CLOSED_CANCELLED, T.REOPENED]


async def test_jira_status_transition_by_webhook(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    issue_id = str(uuid.uuid4().int % 10**9)
    created = await post_jira(http, running, encode(jira_payload("cloud_issue_created.json", issue_id)))
    approved_body = encode(jira_payload("cloud_transition_approved.json", issue_id))
    approved = await post_jira(http, running, approved_body)
    assert (created.status, approved.status) == (202, 202)
    # Jira has no delivery id: the same issue + changelog again is a replay.
    replay = await post_jira(http, running, approved_body)
    assert replay.status == 409
    assert replay.content_type == "application/problem+json"
    assert replay.body["type"].endswith("/replayed-delivery")
    events = ticket_events(await read_all(kafka_settings, running.tickets), issue_id)
    assert [(e.transition, e.version) for e in events] == [(T.REQUESTED, 20001), (T.APPROVED, 20005)]
    assert events[1].previous_state == "Waiting for approval"
    assert events[1].source == "jira://acme.atlassian.net"
    assert str(events[1].entitlement) == "okta:user:alice.smith@example.com|okta:group:00g2finance|member"


async def test_generic_cloudevent(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    payload = load("generic", "ticket_approved.json")
    ticket_id = uuid.uuid4().hex
    payload["data"]["ticket_id"] = ticket_id
    reply = await post_standard(http, running, "generic", encode(payload))
    assert reply.status == 202, reply.body
    [event] = ticket_events(await read_all(kafka_settings, running.tickets), ticket_id)
    assert (event.system, event.transition) == ("generic", T.APPROVED)


async def test_not_access_related_ticket_is_accepted_and_counted(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    before = len(await read_all(kafka_settings, running.tickets))
    change = load("servicenow", "change_request_not_access.json")
    reply = await post_standard(http, running, "servicenow", encode(change))
    assert reply.status == 202
    assert reply.body["results"] == [{"result": "skipped", "ticket": "CHG0030100", "why": "not_access_related"}]
    assert len(await read_all(kafka_settings, running.tickets)) == before
    async with http.get(f"{running.url}/metrics") as response:
        text = await response.text()
    assert (
        'closeloop_skipped_total{input="webhook:servicenow",service="request-intake",why="not_access_related"}' in text
    )


# -- refusals: nothing published ----------------------------------------------------------------------------


async def _nothing_for(kafka_settings: KafkaSettings, running: RunningIntake, marker: str) -> None:
    for topic in (running.tickets, running.dead_letters):
        assert not [r for r in await read_all(kafka_settings, topic) if r.value and marker.encode() in r.value]


async def test_forged_signature_is_401_with_no_side_effect(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings, app_pool: asyncpg.Pool
) -> None:
    sys_id = new_sys_id()
    body = encode(ritm("ritm_approved.json", sys_id))
    forged = "whsec_" + "A" * 43 + "="
    reply = await post_standard(http, running, "servicenow", body, delivery_id=f"forged-{sys_id}", secret=forged)
    assert reply.status == 401
    assert reply.content_type == "application/problem+json"
    assert reply.body["status"] == 401
    unsigned = await post_standard(http, running, "servicenow", body, headers={})
    assert unsigned.status == 401
    jira_forged = await post_jira(http, running, encode(jira_payload("cloud_issue_created.json", sys_id)), secret="x")
    assert jira_forged.status == 401
    await _nothing_for(kafka_settings, running, sys_id)
    seen = await app_pool.fetchval(
        "SELECT count(*) FROM intake_webhook_deliveries WHERE delivery_id = $1", f"forged-{sys_id}"
    )
    assert seen == 0


async def test_stale_timestamp_is_401(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    sys_id = new_sys_id()
    body = encode(ritm("ritm_approved.json", sys_id))
    reply = await post_standard(http, running, "servicenow", body, at=datetime.now(UTC) - timedelta(minutes=6))
    assert reply.status == 401
    assert reply.body["type"].endswith("/stale-timestamp")
    await _nothing_for(kafka_settings, running, sys_id)


async def test_replayed_webhook_id_is_refused_across_a_restart(
    running: RunningIntake,
    http: aiohttp.ClientSession,
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
) -> None:
    sys_id = new_sys_id()
    body = encode(ritm("ritm_approved.json", sys_id))
    headers = sign_standard(SN_SECRET, f"msg-{sys_id}", body)
    assert (await post_standard(http, running, "servicenow", body, headers=headers)).status == 202
    replay = await post_standard(http, running, "servicenow", body, headers=headers)
    assert replay.status == 409
    assert replay.body["type"].endswith("/replayed-delivery")
    # Another instance (or this one after a restart) shares the ledger in PostgreSQL.
    other = await start_intake(
        kafka_settings, database_settings, tickets_topic=running.tickets, consume_raw_topics=False
    )
    try:
        assert (await post_standard(http, other, "servicenow", body, headers=headers)).status == 409
    finally:
        await other.stop()
    assert len(ticket_events(await read_all(kafka_settings, running.tickets), sys_id)) == 1


async def test_oversized_body_is_413(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    sys_id = new_sys_id()
    record = ritm("ritm_approved.json", sys_id)
    record["padding"] = "x" * (1024 * 1024)
    reply = await post_standard(http, running, "servicenow", encode(record))
    assert reply.status == 413
    assert reply.content_type == "application/problem+json"
    await _nothing_for(kafka_settings, running, sys_id)


async def test_invalid_json_is_422_and_kept_in_the_dead_letter_topic(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    marker = new_sys_id()
    body = f'{{"sys_id": "{marker}", "state": '.encode()
    reply = await post_standard(http, running, "servicenow", body, delivery_id=f"bad-json-{marker}")
    assert reply.status == 422
    assert reply.content_type == "application/problem+json"
    assert reply.body["field"] == "<body>"
    assert reply.body["type"] == "https://closeloop.dev/problems/invalid-json"
    assert "not JSON" in reply.body["detail"]
    [letter] = [r for r in await read_all(kafka_settings, running.dead_letters) if r.value == body]
    assert header(letter, "dlq_source") == "webhook:servicenow"
    # Replayable where a raw record of the same payload would go: the ServiceNow raw topic.
    assert header(letter, "dlq_source_topic") == running.settings.servicenow_raw_topic
    assert header(letter, "dlq_kind") == "malformed"
    assert (header(letter, "dlq_reason") or "").startswith("invalid_json: <body>")
    assert header(letter, "dlq_original_webhook-id") == f"bad-json-{marker}"
    assert header(letter, "dlq_original_webhook-signature") is None
    assert not ticket_events(await read_all(kafka_settings, running.tickets), marker)


async def test_unmappable_ticket_is_422_naming_the_field(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    sys_id = new_sys_id()
    body = encode(ritm("ritm_missing_resource.json", sys_id))
    reply = await post_standard(http, running, "servicenow", body)
    assert reply.status == 422
    assert reply.body["field"] == "variables.access_resource"
    assert reply.body["errors"][0]["field"] == "variables.access_resource"
    assert reply.body["type"] == "https://closeloop.dev/problems/unmappable-ticket"
    [letter] = [r for r in await read_all(kafka_settings, running.dead_letters) if r.value == body]
    assert header(letter, "dlq_reason") == (
        "unmappable: variables.access_resource: missing; required for access_request tickets"
    )
    assert not ticket_events(await read_all(kafka_settings, running.tickets), sys_id)


async def test_health_readiness_and_metrics_on_the_same_app(
    running: RunningIntake, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{running.url}/healthz") as response:
        assert response.status == 200
    async with http.get(f"{running.url}/readyz") as response:
        assert response.status == 200
        assert (await response.json())["failing"] == []
    async with http.get(f"{running.url}/metrics") as response:
        assert response.status == 200
        assert "closeloop_intake_webhook_rejections" in await response.text()


async def test_endpoint_without_a_secret_refuses_everything(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, http: aiohttp.ClientSession
) -> None:
    service = await start_intake(kafka_settings, database_settings, jira_secret="", consume_raw_topics=False)
    try:
        reply = await post_jira(http, service, encode(load("jira", "cloud_issue_created.json")))
        assert reply.status == 503
        assert reply.body["type"].endswith("/webhook-not-configured")
    finally:
        await service.stop()


async def test_chunked_oversized_body_is_413(running: RunningIntake, http: aiohttp.ClientSession) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * (64 * 1024)  # 1.25 MiB without a Content-Length

    async with http.post(f"{running.url}/v1/webhooks/jira", data=chunks()) as response:
        assert response.status == 413


async def test_broker_failure_is_503_and_the_sender_retry_is_accepted(
    running: RunningIntake,
    http: aiohttp.ClientSession,
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
) -> None:
    # An instance whose publishes cannot succeed (the broker refuses the topic name) within its timeout.
    broken = await start_intake(
        kafka_settings,
        database_settings,
        tickets_topic="not a valid topic!",
        ensure_topics=False,
        consume_raw_topics=False,
        publish_timeout_s=1.0,
    )
    sys_id = new_sys_id()
    body = encode(ritm("ritm_approved.json", sys_id))
    headers = sign_standard(SN_SECRET, f"msg-retry-{sys_id}", body)
    try:
        failed = await post_standard(http, broken, "servicenow", body, headers=headers)
        assert failed.status == 503
        assert failed.body["type"].endswith("/temporarily-unavailable")
    finally:
        await broken.stop()
    # The claim was released: the sender's retry (same webhook-id) is accepted, and published once.
    retried = await post_standard(http, running, "servicenow", body, headers=headers)
    assert retried.status == 202, retried.body
    assert len(ticket_events(await read_all(kafka_settings, running.tickets), sys_id)) == 1
