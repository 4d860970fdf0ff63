"""The provisioning service end to end through Kafka and PostgreSQL:

approved ticket -> pending -> grant command -> (Okta executor) -> grant event -> active;
revocation ticket -> revoking -> revoke command -> (Okta executor) -> revoke event -> revoked;
every step on entitlements.v1 and in a verifiable audit chain; a policy-breaking request is refused
with a visible reason; bad input goes to the dead-letter topic and the service carries on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from closeloop.contracts.commands import CommandAction
from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, RevocationTrigger
from closeloop.contracts.grants import GrantAction
from closeloop.contracts.identity import IdentityKind
from closeloop.contracts.tickets import TicketKind
from closeloop.record import repository, verify_chain
from closeloop.record.audit import history
from closeloop.settings import KafkaSettings
from closeloop.topics import dlq
from tests.integration.provisioning.conftest import RecordDb
from tests.integration.provisioning.harness import (
    eventually,
    producer_for,
    publish,
    read_commands,
    read_entitlements,
    service_settings,
    start_service,
)
from tests.support.kafka_helpers import read_topic
from tests.unit.provisioning.factories import fixture, grant, key, ticket
from tests.unit.provisioning.fake_apis import FakeOkta

pytestmark = pytest.mark.integration

ALICE_ID = "00u1alice0000000000a"
GROUP = "00g1engreaders"
ALICE = key()


@pytest.fixture
async def okta() -> AsyncIterator[FakeOkta]:
    fake = await FakeOkta(users={"alice@example.com": ALICE_ID}, groups={GROUP: set()}).start_okta()
    yield fake
    await fake.stop()


async def test_ticket_to_active_to_revoked_end_to_end(
    okta: FakeOkta, kafka_settings: KafkaSettings, record_db: RecordDb
) -> None:
    settings = service_settings(okta_url=okta.url, okta_token=okta.token)
    service = await start_service(settings, kafka_settings, record_db.settings)
    try:
        async with producer_for(kafka_settings) as producer:
            approved = ticket(ALICE, ticket_number="RITM0010001")
            await publish(producer, settings.tickets_topic, approved)

            # pending, with the grant command out through the outbox and carried out at Okta
            grants = await read_commands(kafka_settings, settings.commands_topic, lambda cs: len(cs) >= 1)
            (grant_command,) = grants
            assert grant_command.action is CommandAction.GRANT
            assert grant_command.key == ALICE
            assert grant_command.ticket is not None
            assert grant_command.ticket.ticket_number == "RITM0010001"
            assert grant_command.confirm_by is not None
            await eventually(lambda: _async(okta.groups[GROUP] == {ALICE_ID}))

            # the connector reports the grant (carrying the command id) -> active
            await publish(producer, settings.grants_topic, grant(ALICE, command_id=grant_command.command_id))
            await read_entitlements(
                kafka_settings,
                settings.entitlements_topic,
                lambda es: any(e.status is EntitlementStatus.ACTIVE for e in es),
            )

            revocation = ticket(ALICE, kind=TicketKind.REVOCATION_REQUEST, ticket_number="RITM0010042", duration=None)
            await publish(producer, settings.tickets_topic, revocation)
            both = await read_commands(kafka_settings, settings.commands_topic, lambda cs: len(cs) >= 2)
            revoke_command = both[1]
            assert revoke_command.action is CommandAction.REVOKE
            assert revoke_command.reason == RevocationTrigger.TICKET
            await eventually(lambda: _async(okta.groups[GROUP] == set()))

            await publish(
                producer,
                settings.grants_topic,
                grant(ALICE, action=GrantAction.REVOKE, command_id=revoke_command.command_id),
            )
            events = await read_entitlements(
                kafka_settings,
                settings.entitlements_topic,
                lambda es: any(e.status is EntitlementStatus.REVOKED for e in es),
            )
    finally:
        await service.stop()
    assert service.failures() == []

    mine = [e for e in events if e.key == ALICE]
    assert [(e.change, e.status) for e in mine] == [
        (EntitlementChange.REQUESTED, EntitlementStatus.PENDING),
        (EntitlementChange.ACTIVATED, EntitlementStatus.ACTIVE),
        (EntitlementChange.REVOKE_REQUESTED, EntitlementStatus.REVOKING),
        (EntitlementChange.REVOKED, EntitlementStatus.REVOKED),
    ]
    assert [e.record_version for e in mine] == [1, 2, 3, 4]
    pending, active, revoking, revoked = mine
    assert pending.owner == "bob.manager@example.com"
    assert pending.expires_at == approved.occurred_at + timedelta(days=30)
    assert RevocationTrigger.EXPIRY in pending.revocation_triggers
    assert pending.project == "payments-oncall"
    assert active.granted_at is not None
    assert active.verified_at is not None
    assert [t.ticket_number for t in active.tickets] == ["RITM0010001"]
    assert revoking.revoke_confirm_by is not None
    assert revoking.revoke_requested_at is not None
    assert [t.ticket_number for t in revoked.tickets] == ["RITM0010001", "RITM0010042"]
    assert revoked.verified_at is not None
    assert revoked.verified_at >= revoking.revoke_requested_at

    async with record_db.app.acquire() as conn:
        record = await repository.load(conn, ALICE)
        assert record is not None
        assert record.status is EntitlementStatus.REVOKED
        assert record.revoke_confirmed()
        chain = await verify_chain(conn)
        assert chain.ok, chain.problem
        assert [row.action for row in await history(conn, str(ALICE))] == [
            "requested",
            "grant_issued",
            "activated",
            "revoke_requested",
            "revoke_issued",
            "revoked",
        ]
        executions = await conn.fetch("SELECT action, executor, status FROM command_executions ORDER BY created_at")
        assert [tuple(r) for r in executions] == [("grant", "okta", "succeeded"), ("revoke", "okta", "succeeded")]
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    assert [(r.method, r.path) for r in okta.requests if r.method != "GET"] == [
        ("PUT", f"/api/v1/groups/{GROUP}/users/{ALICE_ID}"),
        ("DELETE", f"/api/v1/groups/{GROUP}/users/{ALICE_ID}"),
    ]


async def _async(value: bool) -> bool:
    return value


async def test_nhi_without_owner_is_refused_with_a_visible_reason(
    kafka_settings: KafkaSettings, record_db: RecordDb
) -> None:
    settings = service_settings()
    service = await start_service(settings, kafka_settings, record_db.settings)
    nhi = fixture("nhi_without_owner.json")
    ci_key = key(nhi["entitlement"]["principal"], nhi["entitlement"]["resource"], nhi["entitlement"]["privilege"])
    try:
        async with producer_for(kafka_settings) as producer:
            refused_request = ticket(
                ci_key, kind_of_principal=IdentityKind.SERVICE_ACCOUNT, owner=None, ticket_number="RITM0010007"
            )
            await publish(producer, settings.tickets_topic, refused_request)
            events = await read_entitlements(kafka_settings, settings.entitlements_topic, lambda es: len(es) >= 1)
    finally:
        await service.stop()
    (refused,) = events
    assert refused.key == ci_key
    assert refused.change is EntitlementChange.REFUSED
    assert refused.status is EntitlementStatus.REFUSED
    assert refused.reason is not None
    assert "RITM0010007 refused by policy" in refused.reason
    assert "non-human identity (service_account) has no owner" in refused.reason
    assert refused.principal_kind is IdentityKind.SERVICE_ACCOUNT
    async with record_db.app.acquire() as conn:
        assert [row.action for row in await history(conn, str(ci_key))] == ["refused"]  # no command issued
        assert await conn.fetchval("SELECT count(*) FROM command_executions") == 0


async def test_bad_input_is_dead_lettered_and_the_service_carries_on(
    kafka_settings: KafkaSettings, record_db: RecordDb
) -> None:
    settings = service_settings()
    service = await start_service(settings, kafka_settings, record_db.settings)
    vault = key("vault:entity:e-1234", "vault:policy:prod-read", "attached")
    no_entitlement = ticket().model_copy(update={"entitlement": None, "access": None, "requested_for": "x@example.com"})
    try:
        async with producer_for(kafka_settings) as producer:
            await producer.send_and_wait(settings.tickets_topic, b"{not json", key=b"garbage")
            await producer.send_and_wait(
                settings.grants_topic, b'{"event_type": "iam.grant.changed", "schema_version": 1}'
            )
            await publish(producer, settings.tickets_topic, no_entitlement)
            await publish(producer, settings.tickets_topic, ticket(vault, ticket_number="RITM0000900"))
            ticket_letters = await read_topic(
                kafka_settings, dlq(settings.tickets_topic), until=lambda rs: len(rs) >= 2
            )
            grant_letters = await read_topic(kafka_settings, dlq(settings.grants_topic), until=lambda rs: len(rs) >= 1)
            events = await read_entitlements(kafka_settings, settings.entitlements_topic, lambda es: len(es) >= 1)
    finally:
        await service.stop()
    reasons = sorted(dict(r.headers)["dlq_reason"].decode() for r in ticket_letters)
    assert any(reason.startswith("value is not JSON") for reason in reasons)
    assert "approved access ticket names no entitlement (needs requested_for and access)" in reasons
    assert b"{not json" in [r.value for r in ticket_letters]
    (letter,) = grant_letters
    assert dict(letter.headers)["dlq_source_topic"].decode() == settings.grants_topic
    assert events[0].key == vault
    assert events[0].status is EntitlementStatus.PENDING


async def test_health_and_readiness_on_the_ops_port(kafka_settings: KafkaSettings, record_db: RecordDb) -> None:
    settings = service_settings()
    service = await start_service(settings, kafka_settings, record_db.settings)
    try:
        port = service.ops_port()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["service"] == "provisioning"

            async def ready() -> bool:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    return response.status == 200

            await eventually(ready, timeout_s=30)
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert "closeloop_events_in" in await response.text()
    finally:
        await service.stop()
    assert service.failures() == []
