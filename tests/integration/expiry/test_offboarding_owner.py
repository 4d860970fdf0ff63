"""One owner for offboarding: through Kafka and PostgreSQL with provisioning and expiry both running, an
offboarding ticket produces exactly one revoke per entitlement, issued by expiry, each with the deadline of
its system's executor (an API executor an hour, a manual system three days, never a fixed 15 minutes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from closeloop import kafka
from closeloop.contracts.codec import cloudevents_headers, encode, kafka_key
from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, RevocationTrigger
from closeloop.contracts.identity import EntitlementKey
from closeloop.contracts.tickets import TicketEvent, TicketKind, TicketTransition
from closeloop.record import ConfirmationPolicy
from closeloop.settings import DatabaseSettings, KafkaSettings
from expiry.clock import FakeClock
from reconciliation.topic_meta import committed_offsets
from tests.integration.expiry.harness import (
    eventually,
    expiry_settings,
    read_commands,
    read_entitlements,
    record_topics,
    start_expiry,
    start_provisioning,
)
from tests.integration.expiry.helpers import key_for, record_of, seed
from tests.support.kafka_helpers import unique

pytestmark = pytest.mark.integration

HOUR, THREE_DAYS = timedelta(hours=1), timedelta(days=3)


def offboarding(person: str, transition: TicketTransition, ticket_id: str) -> TicketEvent:
    ticket: TicketEvent = TicketEvent.create(
        occurred_at=datetime.now(UTC),
        source="servicenow://acme",
        correlation_id=f"offboard-{ticket_id}-{transition.value}",
        system="servicenow",
        ticket_id=ticket_id,
        ticket_number="HR0004711",
        kind=TicketKind.OFFBOARDING,
        transition=transition,
        state=transition.value,
        requested_for=person,
    )
    return ticket


async def send(producer: AIOKafkaProducer, topic: str, ticket: TicketEvent) -> tuple[int, int]:
    """Publish and return (partition, offset) so the test can wait until a group has consumed it."""
    sent = await producer.send_and_wait(
        topic, encode(ticket), key=kafka_key(ticket), headers=cloudevents_headers(ticket)
    )
    return sent.partition, sent.offset


async def test_an_offboarding_ticket_is_revoked_once_per_entitlement_by_expiry_with_each_systems_deadline(
    kafka_settings: KafkaSettings, expiry_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    settings = expiry_settings()
    provisioning = await start_provisioning(settings, kafka_settings, expiry_db)
    expiry = await start_expiry(settings, kafka_settings, expiry_db)
    person = f"{unique('frank')}@example.com"
    deadlines: dict[EntitlementKey, timedelta] = {
        key_for(f"okta:user:{person}", "okta:group:00g1payments", "member"): HOUR,  # Okta API executor
        key_for(f"github:user:{person}", "github:team:acme/payments", "maintainer"): HOUR,  # GitHub API
        key_for(f"okta:user:{person}", "okta:app:0oa1jira", "assigned"): THREE_DAYS,  # no API: by hand
        key_for(f"vault:entity:{person}", "vault:policy:prod-read", "attached"): THREE_DAYS,
        key_for(f"github:user:{person}", "github:org:acme", "member"): THREE_DAYS,
    }
    bystander = key_for("okta:user:grace@example.com", "okta:group:00g1payments", "member")
    try:
        topics, clock = record_topics(settings), FakeClock(datetime.now(UTC))
        for key in [*deadlines, bystander]:
            await seed(pool, key, clock, topics, expires_at=clock.now() + timedelta(days=30))

        producer = kafka.producer(kafka_settings)
        await producer.start()
        try:  # approved, then closed: the second delivery must not revoke again (nor may provisioning)
            await send(producer, settings.tickets_topic, offboarding(person, TicketTransition.APPROVED, "hr-1"))
            partition, offset = await send(
                producer, settings.tickets_topic, offboarding(person, TicketTransition.CLOSED_COMPLETE, "hr-1")
            )
        finally:
            await producer.stop()

        sent = await read_commands(
            kafka_settings, settings.commands_topic, until=lambda cs: {c.key for c in cs} >= set(deadlines)
        )

        async def consumed_by(group: str) -> bool:
            committed = await committed_offsets(kafka_settings, group, {(settings.tickets_topic, partition)})
            position = committed[(settings.tickets_topic, partition)]
            return position is not None and position > offset

        # Both services have read both deliveries; whatever they were going to send is in the outbox now.
        await eventually(lambda: consumed_by(f"{settings.group_id}.provisioning"))
        await eventually(lambda: consumed_by(settings.group_id))
        await read_entitlements(
            kafka_settings,
            settings.entitlements_topic,
            until=lambda es: sum(e.change is EntitlementChange.REVOKE_REQUESTED for e in es) >= len(deadlines),
        )
        async with pool.acquire() as conn:
            pending = await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", settings.commands_topic)
        assert pending == 0
        sent = await read_commands(kafka_settings, settings.commands_topic, until=lambda cs: len(cs) >= len(sent))

        revokes: list[ProvisioningCommand] = [c for c in sent if c.action is CommandAction.REVOKE]
        assert sorted(str(c.key) for c in revokes) == sorted(str(k) for k in deadlines)  # one each, no bystander
        for command in revokes:
            assert command.source == "closeloop/expiry"
            assert command.reason is RevocationTrigger.OFFBOARDING
            record = await record_of(pool, command.key)
            assert record.status is EntitlementStatus.REVOKING
            assert record.revoke_requested_at is not None
            assert command.confirm_by == record.revoke_confirm_by
            assert command.confirm_by is not None
            assert command.confirm_by - record.revoke_requested_at == deadlines[command.key], command.key
        assert (await record_of(pool, bystander)).status is EntitlementStatus.ACTIVE
        assert ConfirmationPolicy.load().window(bystander, revoke=True) == HOUR  # the packaged policy's numbers
        assert not provisioning.failures()
        assert not expiry.failures()
    finally:
        await expiry.stop()
        await provisioning.stop()
