"""The manual executor through the running service: a command for a system without an API waits for a
person's attestation; until then a revoke is unconfirmed; the attestation confirms it via the grants
topic like any source report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.contracts.entitlements import EntitlementStatus
from closeloop.contracts.tickets import TicketKind
from closeloop.record import RecordTopics, repository
from closeloop.settings import KafkaSettings
from provisioning.attest_command import ATTESTATION_TYPE, AttestationRefused, attest_command, awaiting_attestation
from tests.integration.provisioning.conftest import RecordDb
from tests.integration.provisioning.harness import eventually, producer_for, publish, service_settings, start_service
from tests.support.kafka_helpers import read_topic
from tests.unit.provisioning.factories import key, ticket

pytestmark = pytest.mark.integration

VAULT = key("vault:entity:e-42", "vault:policy:prod-db-admin", "attached")


async def status_of(db: RecordDb) -> EntitlementStatus | None:
    async with db.app.acquire() as conn:
        record = await repository.load(conn, VAULT)
    return record.status if record else None


async def waiting(db: RecordDb, action: str) -> str:
    rows = [r for r in await awaiting_attestation(db.app) if r["action"] == action]
    assert len(rows) == 1
    return str(rows[0]["command_id"])


async def test_manual_grant_and_revoke_wait_for_attestation(kafka_settings: KafkaSettings, record_db: RecordDb) -> None:
    settings = service_settings()
    topics = RecordTopics(
        entitlements=settings.entitlements_topic, commands=settings.commands_topic, grants=settings.grants_topic
    )
    service = await start_service(settings, kafka_settings, record_db.settings)
    try:
        async with producer_for(kafka_settings) as producer:
            await publish(producer, settings.tickets_topic, ticket(VAULT, ticket_number="RITM0005001"))

            async def grant_waits() -> bool:
                return any(r["action"] == "grant" for r in await awaiting_attestation(record_db.app))

            await eventually(grant_waits)
            assert await status_of(record_db) is EntitlementStatus.PENDING
            grant_command = await waiting(record_db, "grant")
            event = await attest_command(
                record_db.app,
                topics,
                grant_command,
                attested_by="dba@example.com",
                evidence="vault write CHG0001",
                attested_at=datetime.now(UTC),
            )
            assert (event.command_id, event.vendor_event_type, event.source_system) == (
                grant_command,
                ATTESTATION_TYPE,
                "vault",
            )
            await eventually(lambda: _is(status_of(record_db), EntitlementStatus.ACTIVE))

            await publish(
                producer,
                settings.tickets_topic,
                ticket(VAULT, kind=TicketKind.REVOCATION_REQUEST, ticket_number="RITM0005002"),
            )

            async def revoke_waits() -> bool:
                return any(r["action"] == "revoke" for r in await awaiting_attestation(record_db.app))

            await eventually(revoke_waits)
            async with record_db.app.acquire() as conn:
                revoking = await repository.load(conn, VAULT)
            assert revoking is not None
            assert revoking.status is EntitlementStatus.REVOKING
            assert not revoking.revoke_confirmed()  # unconfirmed until a person attests
            revoke_command = await waiting(record_db, "revoke")
            await attest_command(
                record_db.app,
                topics,
                revoke_command,
                attested_by="dba@example.com",
                evidence="policy detached",
                attested_at=datetime.now(UTC),
            )
            await eventually(lambda: _is(status_of(record_db), EntitlementStatus.REVOKED))

            with pytest.raises(AttestationRefused, match=r"attested by dba@example\.com already"):
                await attest_command(
                    record_db.app, topics, revoke_command, attested_by="x", evidence="y", attested_at=datetime.now(UTC)
                )
            with pytest.raises(AttestationRefused, match="no command"):
                await attest_command(
                    record_db.app, topics, "nope", attested_by="x", evidence="y", attested_at=datetime.now(UTC)
                )
            with pytest.raises(AttestationRefused, match="needs who"):
                await attest_command(
                    record_db.app, topics, revoke_command, attested_by=" ", evidence="y", attested_at=datetime.now(UTC)
                )
    finally:
        await service.stop()
    attestations = await read_topic(kafka_settings, settings.grants_topic, until=lambda rs: len(rs) >= 2)
    assert len({r.value for r in attestations}) == 2
    async with record_db.app.acquire() as conn:
        rows = await conn.fetch(
            "SELECT action, status, attested_by, evidence FROM command_executions ORDER BY created_at"
        )
        actions = [
            r["action"]
            for r in await conn.fetch("SELECT action FROM audit_log WHERE entity_type = 'command' ORDER BY seq")
        ]
    assert [tuple(r) for r in rows] == [
        ("grant", "attested", "dba@example.com", "vault write CHG0001"),
        ("revoke", "attested", "dba@example.com", "policy detached"),
    ]
    assert actions == ["grant_issued", "grant_attested", "revoke_issued", "revoke_attested"]


async def _is(value: object, expected: EntitlementStatus) -> bool:
    return await value is expected  # type: ignore[misc]
