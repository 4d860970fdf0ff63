"""Batch writes of the record on a real PostgreSQL: `apply_many` and `begin_revokes` store exactly what
one `apply` / `begin_revoke` per record would, keep the version guard for every row, and leave nothing
behind when one row of the batch is stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from closeloop.contracts.commands import CommandAction
from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, RevocationTrigger, TicketRef
from closeloop.contracts.identity import EntitlementKey
from closeloop.record import (
    Cause,
    ConcurrentModification,
    ConfirmationPolicy,
    EntitlementRecord,
    InvalidTransition,
    RecordChange,
    RevokeRequest,
    begin_revokes,
    record_transaction,
    repository,
    verify_chain,
)
from tests.integration.provisioning.conftest import RecordDb
from tests.integration.provisioning.test_record_store import TICKET, TOPICS
from tests.unit.provisioning.factories import key

pytestmark = pytest.mark.integration

S = EntitlementStatus
ENDING = TicketRef(system="servicenow", ticket_id="sys9", ticket_number="RITM9", kind="offboarding")
GRANTED = datetime(2026, 3, 2, 9, 16, tzinfo=UTC)


def keys(count: int) -> list[EntitlementKey]:
    return [key(principal=f"okta:user:u{i}@example.com") for i in range(count)]


async def create_active(db: RecordDb, entitlements: list[EntitlementKey]) -> list[EntitlementRecord]:
    """Each entitlement created and activated with every column kind set (jsonb, text[], interval)."""
    async with record_transaction(db.app, actor="test", topics=TOPICS) as tx:
        for entitlement in entitlements:
            pending = await tx.apply(
                None,
                EntitlementRecord.new(
                    entitlement,
                    status=S.PENDING,
                    tickets=(TICKET,),
                    revocation_triggers=(RevocationTrigger.EXPIRY, RevocationTrigger.OFFBOARDING),
                    recertification_interval=timedelta(days=90),
                    expires_at=GRANTED + timedelta(days=30),
                    project="apollo",
                ),
                change=EntitlementChange.REQUESTED,
                cause=Cause.new(),
            )
            await tx.apply(
                pending,
                pending.evolve(status=S.ACTIVE, granted_at=GRANTED),
                change=EntitlementChange.ACTIVATED,
                cause=Cause.new(),
            )
    async with db.app.acquire() as conn:
        return [r for e in entitlements if (r := await repository.load(conn, e)) is not None]


async def test_apply_many_stores_each_record_as_apply_would(record_db: RecordDb) -> None:
    records = await create_active(record_db, keys(3))
    causes = [Cause.new() for _ in records]
    async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:
        stored = await tx.apply_many(
            [
                RecordChange(
                    r, r.evolve(owner=f"owner{i}", status=S.REVOKING), EntitlementChange.REVOKE_REQUESTED, c, "r"
                )
                for i, (r, c) in enumerate(zip(records, causes, strict=True))
            ]
        )
    assert [s.version for s in stored] == [3, 3, 3]
    async with record_db.app.acquire() as conn:
        for i, record in enumerate(stored):
            loaded = await repository.load(conn, record.key)
            assert loaded == record  # every column round-trips, the text[] and jsonb ones included
            assert loaded.owner == f"owner{i}"
            assert loaded.revocation_triggers == (RevocationTrigger.EXPIRY, RevocationTrigger.OFFBOARDING)
            assert loaded.tickets == (TICKET,)
            assert loaded.recertification_interval == timedelta(days=90)
        assert (await verify_chain(conn)).ok
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = 't.entitlements'") == 9
    assert [e.correlation_id for e in tx.events] == [c.correlation_id for c in causes]


async def test_one_stale_record_fails_the_whole_batch(record_db: RecordDb) -> None:
    records = await create_active(record_db, keys(3))
    async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:  # someone else moves one
        locked = await tx.lock(records[1].key)
        assert locked is not None
        await tx.apply(locked, locked.evolve(owner="other"), change=EntitlementChange.OWNER_CHANGED, cause=Cause.new())
    async with record_db.app.acquire() as conn:
        seq_before = await conn.fetchval("SELECT seq FROM audit_chain_head")
    with pytest.raises(ConcurrentModification, match=r"u1@example\.com"):
        async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:
            await tx.apply_many(
                [
                    RecordChange(r, r.evolve(status=S.REVOKING), EntitlementChange.REVOKE_REQUESTED, Cause.new())
                    for r in records
                ]
            )
    async with record_db.app.acquire() as conn:
        rows = await conn.fetch("SELECT key, version, status FROM entitlements ORDER BY key")
        assert [(r["version"], r["status"]) for r in rows] == [(2, "active"), (3, "active"), (2, "active")]
        assert await conn.fetchval("SELECT seq FROM audit_chain_head") == seq_before


async def test_a_batch_holds_one_change_per_entitlement(record_db: RecordDb) -> None:
    [record] = await create_active(record_db, keys(1))
    change = RecordChange(record, record.evolve(status=S.REVOKING), EntitlementChange.REVOKE_REQUESTED, Cause.new())
    with pytest.raises(InvalidTransition):
        async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:
            await tx.apply_many([change, change])


async def test_begin_revokes_skips_what_is_not_revocable_and_issues_the_rest(record_db: RecordDb) -> None:
    records = await create_active(record_db, keys(3))
    policy = ConfirmationPolicy(revoke_within=timedelta(minutes=10))
    async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:
        locked = [r for k in keys(3) if (r := await tx.lock(k)) is not None]
        already = await tx.apply(
            locked[0], locked[0].evolve(status=S.REVOKING), change=EntitlementChange.REVOKE_REQUESTED, cause=Cause.new()
        )
        requests = [
            RevokeRequest(already, RevocationTrigger.EXPIRY, Cause.new(), "expired"),
            RevokeRequest(locked[1], RevocationTrigger.EXPIRY, Cause.new(), "expired"),
            RevokeRequest(locked[2], RevocationTrigger.OFFBOARDING, Cause.new(), "left", ticket=ENDING),
        ]
        commands = await begin_revokes(tx, requests, confirmation=policy)
    assert commands[0] is None
    assert [c.action for c in commands[1:] if c] == [CommandAction.REVOKE, CommandAction.REVOKE]
    assert commands[2] is not None
    assert commands[2].ticket == ENDING
    assert commands[1] is not None
    assert commands[1].ticket == TICKET
    async with record_db.app.acquire() as conn:
        for record, command in zip(records[1:], commands[1:], strict=True):
            loaded = await repository.load(conn, record.key)
            assert loaded is not None
            assert command is not None
            assert loaded.status is S.REVOKING
            assert loaded.version == record.version + 1
            assert loaded.revoke_requested_at is not None
            assert loaded.revoke_confirm_by == loaded.revoke_requested_at + timedelta(minutes=10)
            assert command.confirm_by == loaded.revoke_confirm_by
        ended = await repository.load(conn, records[2].key)
        assert ended is not None
        assert ended.tickets == (TICKET, ENDING)
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = 't.commands'") == 2
        assert (await verify_chain(conn)).ok
