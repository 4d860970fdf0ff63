"""The running expiry service through real Kafka and PostgreSQL (and provisioning where a revoke is confirmed)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from closeloop import kafka
from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementChange, EntitlementEvent, EntitlementStatus, RevocationTrigger
from closeloop.contracts.grants import GrantAction, GrantEvent, PrincipalStatus, PrincipalStatusChanged
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.contracts.tickets import Approval, ApprovalDecision, TicketEvent, TicketKind, TicketTransition
from closeloop.record import repository
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import dlq
from expiry.clock import FakeClock
from tests.integration.expiry.harness import (
    eventually,
    expiry_settings,
    policy_file,
    read_commands,
    read_entitlements,
    record_topics,
    start_expiry,
    start_provisioning,
)
from tests.integration.expiry.helpers import fresh_key, key_for, record_of, seed
from tests.support.kafka_helpers import read_topic

pytestmark = pytest.mark.integration


def now() -> datetime:
    return datetime.now(UTC)


def revoked_at_source(key: EntitlementKey, command_id: str) -> GrantEvent:
    event: GrantEvent = GrantEvent.create(
        occurred_at=now(),
        source="okta://example.okta.com",
        correlation_id=f"okta-{command_id}",
        action=GrantAction.REVOKE,
        key=key,
        source_system="okta",
        vendor_event_id=f"okta-remove-{command_id}",
        vendor_event_type="group.user_membership.remove",
        command_id=command_id,
    )
    return event


def for_key(commands: list[ProvisioningCommand], key: EntitlementKey) -> list[ProvisioningCommand]:
    return [c for c in commands if c.key == key]


def changes_of(events: list[EntitlementEvent], key: EntitlementKey) -> list[EntitlementChange]:
    return [e.change for e in events if e.key == key]


async def test_ttl_revoke_is_confirmed_by_the_grant_revoke_and_an_unconfirmed_one_raises(
    kafka_settings: KafkaSettings, expiry_db: DatabaseSettings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = expiry_settings(
        sweep_interval_s=1.0,
        retry_initial=timedelta(seconds=1),
        retry_max=timedelta(seconds=2),
        retry_max_attempts=3,
    )
    policy = policy_file(tmp_path / "policy.yaml", "{revoke_within: PT3S, grant_within: PT3S}")
    provisioning = await start_provisioning(settings, kafka_settings, expiry_db, policy)
    expiry = await start_expiry(settings, kafka_settings, expiry_db, policy)
    try:
        topics = record_topics(settings)
        confirmed, unconfirmed = fresh_key("confirmed"), fresh_key("unconfirmed")
        ttl_end = now() + timedelta(seconds=2)
        for key in (confirmed, unconfirmed):
            await seed(pool, key, FakeClock(now()), topics, expires_at=ttl_end, owner="okta:user:lead@example.com")

        first = await read_commands(
            kafka_settings,
            settings.commands_topic,
            until=lambda cs: all(for_key(cs, k) for k in (confirmed, unconfirmed)),
        )
        for key in (confirmed, unconfirmed):
            (command,) = for_key(first, key)
            assert command.action is CommandAction.REVOKE
            assert command.reason is RevocationTrigger.EXPIRY
            assert command.attempt == 1
            assert command.occurred_at >= ttl_end
            record = await record_of(pool, key)
            assert record.revoke_requested_at is not None
            assert command.confirm_by == record.revoke_requested_at + timedelta(seconds=3)
        print(f"revoke command lag after expiry: {(max(c.occurred_at for c in first) - ttl_end).total_seconds():.3f}s")

        # The executor removed `confirmed` at the source; the connector reports it on the grant stream.
        (confirmed_command,) = for_key(first, confirmed)
        async with _producer(kafka_settings) as producer:
            await kafka.publish(
                producer, settings.grants_topic, revoked_at_source(confirmed, confirmed_command.command_id)
            )

        events = await read_entitlements(
            kafka_settings,
            settings.entitlements_topic,
            until=lambda es: (
                EntitlementChange.REVOKE_UNCONFIRMED in changes_of(es, unconfirmed)
                and EntitlementChange.REVOKED in changes_of(es, confirmed)
            ),
        )
        assert changes_of(events, confirmed)[-2:] == [EntitlementChange.EXPIRED, EntitlementChange.REVOKED]
        assert EntitlementChange.REVOKE_UNCONFIRMED not in changes_of(events, confirmed)
        assert changes_of(events, unconfirmed)[-2:] == [EntitlementChange.EXPIRED, EntitlementChange.REVOKE_UNCONFIRMED]
        assert (await record_of(pool, confirmed)).status is EntitlementStatus.REVOKED

        resent = await read_commands(
            kafka_settings, settings.commands_topic, until=lambda cs: len(for_key(cs, unconfirmed)) >= 2
        )
        attempts = for_key(resent, unconfirmed)
        assert [c.attempt for c in attempts][:2] == [1, 2]
        assert attempts[0].command_id == attempts[1].command_id
        assert len(for_key(resent, confirmed)) == 1
        assert not expiry.failures()
        assert not provisioning.failures()
    finally:
        await expiry.stop()
        await provisioning.stop()


async def test_offboarding_a_principal_revokes_all_its_entitlements(
    kafka_settings: KafkaSettings, expiry_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    settings = expiry_settings()
    expiry = await start_expiry(settings, kafka_settings, expiry_db)
    try:
        topics, clock = record_topics(settings), FakeClock(now())
        erin = "okta:user:erin@example.com"
        held = [
            key_for(erin),
            key_for(erin, "okta:app:0oa1jira", "assigned"),
            key_for("github:user:erin@example.com", "github:org:acme", "member"),
        ]
        nhi = key_for("k8s:serviceaccount:payments/deployer", "k8s:clusterrole:edit", "bound")
        for key in held:
            await seed(pool, key, clock, topics, expires_at=now() + timedelta(days=30))
        await seed(pool, nhi, clock, topics, principal_kind=IdentityKind.SERVICE_ACCOUNT, owner=erin)

        event: PrincipalStatusChanged = PrincipalStatusChanged.create(
            occurred_at=now(),
            source="okta://example.okta.com",
            correlation_id="offboard-erin",
            principal=erin,
            status=PrincipalStatus.DEACTIVATED,
            source_system="okta",
            vendor_event_id="okta-deactivate-erin",
            vendor_event_type="user.lifecycle.deactivate",
        )
        async with _producer(kafka_settings) as producer:
            await kafka.publish(producer, settings.grants_topic, event)
            await kafka.publish(producer, settings.grants_topic, event)  # redelivered: must change nothing

        sent = await read_commands(
            kafka_settings, settings.commands_topic, until=lambda cs: all(for_key(cs, k) for k in held)
        )
        events = await read_entitlements(
            kafka_settings,
            settings.entitlements_topic,
            until=lambda es: EntitlementChange.OWNER_OFFBOARDED in changes_of(es, nhi),
        )
        for key in held:
            (command,) = for_key(sent, key)
            assert command.reason is RevocationTrigger.OFFBOARDING
            assert changes_of(events, key)[-1] is EntitlementChange.REVOKE_REQUESTED
        assert not for_key(sent, nhi)
        assert (await record_of(pool, nhi)).status is EntitlementStatus.ACTIVE
        await asyncio.sleep(1.0)
        assert (await record_of(pool, nhi)).last_change is EntitlementChange.OWNER_OFFBOARDED
        metrics = expiry.service.context.metrics if expiry.service else None
        assert metrics is not None
        assert metrics.duplicates.labels("expiry", settings.grants_topic)._value.get() == 1
    finally:
        await expiry.stop()


async def test_project_end_and_recertification_tickets_and_bad_input(
    kafka_settings: KafkaSettings, expiry_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    settings = expiry_settings()
    expiry = await start_expiry(settings, kafka_settings, expiry_db)
    try:
        topics, clock = record_topics(settings), FakeClock(now())
        in_project, reviewed = fresh_key("apollo"), fresh_key("reviewed")
        await seed(pool, in_project, clock, topics, project="apollo")
        await seed(pool, reviewed, clock, topics)
        base = {"occurred_at": now(), "source": "jira://acme", "system": "jira", "state": "Done"}
        project_end: TicketEvent = TicketEvent.create(
            **base,
            correlation_id="pe-1",
            ticket_id="10077",
            ticket_number="OPS-77",
            kind=TicketKind.PROJECT_END,
            transition=TicketTransition.CLOSED_COMPLETE,
            project="apollo",
        )
        recert: TicketEvent = TicketEvent.create(
            **base,
            correlation_id="rc-1",
            ticket_id="10078",
            ticket_number="REC-78",
            kind=TicketKind.RECERTIFICATION,
            transition=TicketTransition.REJECTED,
            entitlement=reviewed,
            approvers=(Approval(approver="mgr@example.com", decision=ApprovalDecision.REJECTED),),
        )
        async with _producer(kafka_settings) as producer:
            await producer.send_and_wait(
                settings.tickets_topic, b'{"event_type": "itsm.ticket.transitioned"', key=b"bad"
            )
            await kafka.publish(producer, settings.tickets_topic, project_end)
            await kafka.publish(producer, settings.tickets_topic, recert)

        sent = await read_commands(
            kafka_settings,
            settings.commands_topic,
            until=lambda cs: bool(for_key(cs, in_project) and for_key(cs, reviewed)),
        )
        assert for_key(sent, in_project)[0].reason is RevocationTrigger.PROJECT_END
        assert for_key(sent, reviewed)[0].reason is RevocationTrigger.RECERTIFICATION
        async with pool.acquire() as conn:
            evidence = await repository.recertifications_for(conn, reviewed)
        assert [(e.decision, e.reviewer) for e in evidence] == [("revoked", "mgr@example.com")]
        assert evidence[0].ticket is not None
        assert evidence[0].ticket.ticket_number == "REC-78"

        dead = await read_topic(kafka_settings, dlq(settings.tickets_topic), until=lambda rs: len(rs) >= 1)
        assert dead[0].key == b"bad"
        assert any(k == "dlq_reason" and b"JSON" in v for k, v in dead[0].headers)

        assert expiry.service is not None
        port = expiry.service.server.port
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
            await eventually(lambda: _ready(http, port), timeout_s=30)
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                body = await response.text()
        assert (
            'closeloop_expiry_actions_total{action="revoke_issued",service="expiry",trigger="project_end"} 1.0' in body
        )
        assert "closeloop_expiry_last_sweep_timestamp_seconds" in body
    finally:
        await expiry.stop()


async def _ready(http: aiohttp.ClientSession, port: int) -> bool:
    async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
        return response.status == 200


class _producer:
    def __init__(self, settings: KafkaSettings) -> None:
        self._producer = kafka.producer(settings)

    async def __aenter__(self):  # type: ignore[no-untyped-def]
        await self._producer.start()
        return self._producer

    async def __aexit__(self, *_: object) -> None:
        await self._producer.stop()
