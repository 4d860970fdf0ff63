"""The Kafka entry point routes and rejects without touching the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from closeloop.consumer_loop import BadInput
from closeloop.contracts.codec import cloudevents_headers, encode
from closeloop.contracts.grants import GrantAction, GrantEvent, PrincipalStatus, PrincipalStatusChanged
from closeloop.contracts.identity import EntitlementKey
from closeloop.contracts.progress import StreamProgress
from closeloop.contracts.tickets import TicketEvent, TicketKind, TicketTransition
from closeloop.dead_letter import Kind
from closeloop.record import RecordTopics
from expiry.context import ExpiryContext, ExpiryPolicy
from expiry.kafka_entry import TriggerEntry
from expiry.metrics import ExpiryMetrics
from expiry.settings import ExpirySettings

SETTINGS = ExpirySettings(tickets_topic="t.tickets", grants_topic="t.grants")
WHEN = datetime(2026, 4, 1, tzinfo=UTC)
KEY = EntitlementKey(principal="okta:user:a@example.com", resource="okta:group:00g1", privilege="member")


class NoDatabase:
    """Any attribute access means the entry point tried to act: these inputs must never reach a handler."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected database use: {name}")


def entry() -> tuple[TriggerEntry, ExpiryMetrics]:
    metrics = ExpiryMetrics()
    ctx = ExpiryContext(
        pool=NoDatabase(), policy=ExpiryPolicy.from_settings(SETTINGS), topics=RecordTopics(), metrics=metrics
    )
    return TriggerEntry(ctx, SETTINGS), metrics


def record(
    topic: str, value: bytes | None, headers: list[tuple[str, bytes]] | None = None
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, 0, 7, 0, 0, b"k", value, None, 1, len(value or b""), headers or [])


def skipped(metrics: ExpiryMetrics, topic: str, why: str) -> float:
    value: float = metrics.skipped.labels("expiry", topic, why)._value.get()
    return value


def ticket(ticket_id: str, number: str, kind: TicketKind, transition: TicketTransition) -> TicketEvent:
    event: TicketEvent = TicketEvent.create(
        occurred_at=WHEN,
        source="servicenow://x",
        correlation_id="c",
        system="servicenow",
        ticket_id=ticket_id,
        ticket_number=number,
        kind=kind,
        transition=transition,
        state=transition.value,
    )
    return event


async def test_grant_events_are_skipped_by_header_without_decoding() -> None:
    trigger_entry, metrics = entry()
    grant: GrantEvent = GrantEvent.create(
        occurred_at=WHEN,
        source="okta://x",
        correlation_id="c",
        action=GrantAction.GRANT,
        key=KEY,
        source_system="okta",
        vendor_event_id="v1",
        vendor_event_type="group.user_membership.add",
    )
    await trigger_entry.process(record("t.grants", b"not even json", cloudevents_headers(grant)))
    await trigger_entry.process(record("t.grants", encode(grant)))  # no headers: decoded, then skipped
    assert skipped(metrics, "t.grants", "not_principal_status") == 2


async def test_non_offboarding_statuses_and_unrelated_tickets_are_skipped() -> None:
    trigger_entry, metrics = entry()
    suspended: PrincipalStatusChanged = PrincipalStatusChanged.create(
        occurred_at=WHEN,
        source="okta://x",
        correlation_id="c",
        principal="okta:user:a@example.com",
        status=PrincipalStatus.SUSPENDED,
        source_system="okta",
        vendor_event_id="v2",
        vendor_event_type="user.lifecycle.suspend",
    )
    await trigger_entry.process(record("t.grants", encode(suspended), cloudevents_headers(suspended)))
    access = ticket("s1", "RITM1", TicketKind.ACCESS_REQUEST, TicketTransition.APPROVED)
    await trigger_entry.process(record("t.tickets", encode(access)))
    assert skipped(metrics, "t.grants", "status_suspended") == 1
    assert skipped(metrics, "t.tickets", "kind_access_request") == 1


async def test_an_approved_offboarding_ticket_naming_nobody_is_dead_lettered() -> None:
    trigger_entry, _ = entry()
    nobody = ticket("s2", "HR1", TicketKind.OFFBOARDING, TicketTransition.CLOSED_COMPLETE)
    with pytest.raises(BadInput) as caught:
        await trigger_entry.process(record("t.tickets", encode(nobody)))
    assert (caught.value.reason_class, caught.value.reason) == (
        "unprocessable",
        "offboarding ticket names nobody (requested_for is empty)",
    )


@pytest.mark.parametrize(
    ("topic", "value", "reason"),
    [
        ("t.tickets", b"{", "value is not JSON"),
        ("t.tickets", None, "tombstone"),
        ("t.tickets", b'{"event_type": "iam.grant.changed", "schema_version": 1}', "does not belong on this topic"),
        ("t.grants", b'{"event_type": "iam.principal.status_changed", "schema_version": 1}', "field required"),
    ],
)
async def test_bad_input_is_rejected_for_the_dead_letter_topic(topic: str, value: bytes | None, reason: str) -> None:
    trigger_entry, _ = entry()
    with pytest.raises(BadInput) as caught:
        await trigger_entry.process(record(topic, value))
    assert reason.lower() in caught.value.reason.lower()
    assert caught.value.kind is Kind.MALFORMED


@pytest.mark.parametrize("topic", [SETTINGS.tickets_topic, SETTINGS.grants_topic])
async def test_progress_records_are_skipped_on_both_topics(topic: str) -> None:
    trigger_entry, metrics = entry()
    progress: StreamProgress = StreamProgress.create(
        occurred_at=WHEN,
        source="closeloop/request-intake",
        correlation_id="request-intake@a",
        stream=topic,
        partition=0,
        producer="request-intake@a",
        watermark=WHEN,
    )
    await trigger_entry.process(record(topic, encode(progress), cloudevents_headers(progress)))
    assert skipped(metrics, topic, "stream_progress") == 1
