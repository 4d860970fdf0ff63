"""The record library on a real PostgreSQL: one transaction for row + outbox + processed id + audit,
versions that refuse lost updates, sweeps that split work, identities, and evidence as of a date."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from closeloop.contracts.commands import CommandAction
from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, TicketRef
from closeloop.contracts.grants import PrincipalStatus
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.record import (
    Cause,
    ConcurrentModification,
    EntitlementRecord,
    InvalidTransition,
    RecertificationEvidence,
    RecordTopics,
    record_transaction,
    repository,
    verify_chain,
)
from provisioning.export_evidence import export_evidence, holdings_at
from tests.integration.provisioning.conftest import RecordDb
from tests.unit.provisioning.factories import key

pytestmark = pytest.mark.integration

S = EntitlementStatus
TOPICS = RecordTopics(entitlements="t.entitlements", commands="t.commands", grants="t.grants")
TICKET = TicketRef(system="servicenow", ticket_id="sys1", ticket_number="RITM1", kind="access_request")


async def create(db: RecordDb, entitlement: EntitlementKey, **fields: object) -> EntitlementRecord:
    async with record_transaction(db.app, actor="test", topics=TOPICS) as tx:
        return await tx.apply(
            None,
            EntitlementRecord.new(entitlement, status=S.PENDING, tickets=(TICKET,), **fields),  # type: ignore[arg-type]
            change=EntitlementChange.REQUESTED,
            cause=Cause.new(),
        )


async def move(
    db: RecordDb, entitlement: EntitlementKey, change: EntitlementChange, **fields: object
) -> EntitlementRecord:
    async with record_transaction(db.app, actor="test", topics=TOPICS) as tx:
        record = await tx.lock(entitlement)
        assert record is not None
        return await tx.apply(record, record.evolve(**fields), change=change, cause=Cause.new())


async def test_one_change_writes_row_outbox_processed_id_and_audit_together(record_db: RecordDb) -> None:
    cause = Cause(correlation_id="corr-1", event_id="evt-1")
    async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:
        assert await tx.claim("test", "evt-1")
        stored = await tx.apply(
            None,
            EntitlementRecord.new(key(), status=S.PENDING, tickets=(TICKET,)),
            change=EntitlementChange.REQUESTED,
            cause=cause,
        )
        await tx.issue(
            stored.command(CommandAction.GRANT, "approved_request", cause=cause, actor="test", ticket=TICKET),
            cause=cause,
        )
    assert stored.version == 1
    async with record_db.app.acquire() as conn:
        assert (await repository.load(conn, key())) == stored
        outbox = await conn.fetch("SELECT topic, key, value, headers FROM outbox ORDER BY id")
        assert [r["topic"] for r in outbox] == ["t.entitlements", "t.commands"]
        assert all(r["key"] == str(key()).encode() for r in outbox)
        event = json.loads(outbox[0]["value"])
        assert (event["event_id"], event["change"], event["status"]) == (stored.event_id(), "requested", "pending")
        assert ["ce_id", stored.event_id()] in json.loads(outbox[0]["headers"])
        assert await conn.fetchval("SELECT count(*) FROM processed_events WHERE event_id = 'evt-1'") == 1
        audit = await conn.fetch("SELECT seq, action, cause_event_id, correlation_id FROM audit_log ORDER BY seq")
        assert [tuple(r) for r in audit] == [
            (1, "requested", "evt-1", "corr-1"),
            (2, "grant_issued", "evt-1", "corr-1"),
        ]

    async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:
        assert not await tx.claim("test", "evt-1")  # the duplicate is recognised


async def test_a_failed_transaction_leaves_nothing_behind(record_db: RecordDb) -> None:
    class Boom(Exception):
        pass

    async def fail_midway() -> None:
        async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:
            assert await tx.claim("test", "evt-boom")
            await tx.apply(
                None,
                EntitlementRecord.new(key(), status=S.PENDING),
                change=EntitlementChange.REQUESTED,
                cause=Cause.new(),
            )
            raise Boom

    with pytest.raises(Boom):
        await fail_midway()
    async with record_db.app.acquire() as conn:
        for table in ("entitlements", "outbox", "processed_events", "audit_log"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table  # noqa: S608 - fixed names
        assert await conn.fetchval("SELECT seq FROM audit_chain_head") == 0


async def test_versions_refuse_a_lost_update(record_db: RecordDb) -> None:
    first = await create(record_db, key())
    await move(record_db, key(), EntitlementChange.ACTIVATED, status=S.ACTIVE, granted_at=datetime.now(UTC))
    with pytest.raises(ConcurrentModification):
        async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:
            await tx.apply(first, first.evolve(status=S.ACTIVE), change=EntitlementChange.ACTIVATED, cause=Cause.new())
    with pytest.raises(ConcurrentModification):  # creating what exists
        await create(record_db, key())
    with pytest.raises(InvalidTransition):
        await move(record_db, key(), EntitlementChange.REQUESTED, status=S.PENDING)


async def test_versions_times_and_recertification_schedule(record_db: RecordDb) -> None:
    created = await create(record_db, key(), recertification_interval=timedelta(days=90))
    assert created.recertification_due_at is None  # not granted yet
    granted_at = datetime(2026, 3, 2, 9, 16, tzinfo=UTC)
    active = await move(record_db, key(), EntitlementChange.ACTIVATED, status=S.ACTIVE, granted_at=granted_at)
    assert active.version == 2
    assert active.created_at == created.created_at
    assert active.updated_at is not None
    assert created.updated_at is not None
    assert active.updated_at > created.updated_at
    assert active.recertification_due_at == granted_at + timedelta(days=90)
    decided = granted_at + timedelta(days=85)
    recertified = await move(record_db, key(), EntitlementChange.RECERTIFIED, last_recertified_at=decided)
    assert recertified.recertification_due_at == decided + timedelta(days=90)
    explicit = await move(
        record_db, key(), EntitlementChange.RECERTIFICATION_DUE, recertification_due_at=decided + timedelta(days=1)
    )
    assert explicit.recertification_due_at == decided + timedelta(days=1)  # an explicit change is kept


async def test_concurrent_writers_keep_the_chain_gapless(record_db: RecordDb) -> None:
    keys = [key(f"okta:user:u{i}@example.com") for i in range(12)]
    await asyncio.gather(*(create(record_db, k) for k in keys))
    await asyncio.gather(
        *(move(record_db, k, EntitlementChange.ACTIVATED, status=S.ACTIVE, granted_at=datetime.now(UTC)) for k in keys)
    )
    async with record_db.app.acquire() as conn:
        report = await verify_chain(conn)
        assert report.ok, report.problem
        assert report.rows_checked == 24
        assert [r["seq"] for r in await conn.fetch("SELECT seq FROM audit_log ORDER BY seq")] == list(range(1, 25))


async def test_sweeps_split_due_rows_between_workers(record_db: RecordDb) -> None:
    now = datetime.now(UTC)
    for i in range(4):
        await create(record_db, key(f"okta:user:e{i}@example.com"), expires_at=now - timedelta(minutes=i + 1))
    await create(record_db, key("okta:user:later@example.com"), expires_at=now + timedelta(days=1))
    async with record_db.app.acquire() as one, record_db.app.acquire() as two, one.transaction(), two.transaction():
        first = await repository.lock_expired(one, now, limit=2)
        second = await repository.lock_expired(two, now, limit=10)
    assert len(first) == 2
    assert len(second) == 2
    assert {str(r.key) for r in first}.isdisjoint({str(r.key) for r in second})
    assert [r.expires_at for r in first] == sorted(r.expires_at for r in first if r.expires_at)


async def test_exception_window_sweep(record_db: RecordDb) -> None:
    now = datetime.now(UTC)
    await create(record_db, key(), exception_window_end=now - timedelta(hours=1))
    async with record_db.app.acquire() as conn, conn.transaction():
        assert [r.key for r in await repository.lock_exception_window_ended(conn, now)] == [key()]


async def test_lookups_by_principal_names_and_project(record_db: RecordDb) -> None:
    await create(record_db, key("okta:user:alice@example.com"), owner="bob@example.com", project="apollo")
    await create(record_db, key("entra:user:Alice@Example.com", "entra:group:1111", "member"))
    await create(record_db, key("github:user:alice-gh", "github:team:acme/platform", "member"))
    await create(record_db, key("okta:user:carol@example.com"), project="apollo")
    async with record_db.app.acquire() as conn, conn.transaction():
        by_name = await repository.lock_by_principal_names(conn, [], ["alice@example.com"])
        assert {r.key.principal for r in by_name} == {"okta:user:alice@example.com", "entra:user:Alice@Example.com"}
        exact = await repository.lock_by_principal_names(conn, ["github:user:alice-gh"])
        assert [r.key.principal for r in exact] == ["github:user:alice-gh"]
        assert len(await repository.lock_by_project(conn, "apollo")) == 2
        assert len(await repository.lock_by_project(conn, "apollo", limit=1)) == 1
        assert len(await repository.lock_by_principal_names(conn, [], ["alice@example.com"], limit=1)) == 1
    async with record_db.app.acquire() as conn:
        assert len(await repository.list_entitlements(conn, ticket_number="RITM1", limit=2)) == 2
        assert len(await repository.list_entitlements(conn, ticket_number="RITM1", limit=10, offset=3)) == 1
        assert len(await repository.list_entitlements(conn, statuses=[S.ACTIVE])) == 0


async def test_identities_aliases_and_kinds(record_db: RecordDb) -> None:
    principal = "okta:user:alice@example.com"
    async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:
        created = await tx.upsert_identity(
            principal, cause=Cause.new(), kind=IdentityKind.HUMAN, aliases=["alice@example.com", "00u1alice"]
        )
        again = await tx.upsert_identity(
            principal, cause=Cause.new(), kind=IdentityKind.UNKNOWN, aliases=["alice@example.com"]
        )
        assert again == created  # nothing new: no write, no audit row
        suspended = await tx.upsert_identity(principal, cause=Cause.new(), status=PrincipalStatus.SUSPENDED)
    assert created.kind is IdentityKind.HUMAN
    assert suspended.kind is IdentityKind.HUMAN
    assert suspended.is_inactive
    assert suspended.version == 2
    async with record_db.app.acquire() as conn:
        assert await repository.resolve_principal(conn, "00u1alice") == principal
        assert await repository.resolve_principal(conn, principal) == principal
        assert await repository.resolve_principal(conn, "nobody") is None
        loaded = await repository.load_identity(conn, principal)
        assert loaded is not None
        assert loaded.aliases == ("00u1alice", "alice@example.com")
        assert [r["action"] for r in await conn.fetch("SELECT action FROM audit_log ORDER BY seq")] == [
            "identity_created",
            "identity_updated",
        ]


async def test_observed_grants_keep_the_newest_report(record_db: RecordDb) -> None:
    now = datetime.now(UTC)
    async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:
        assert await tx.observe_grant(key(), live=True, source_system="okta", observed_at=now, vendor_event_id="a")
        assert not await tx.observe_grant(
            key(), live=False, source_system="okta", observed_at=now - timedelta(seconds=1), vendor_event_id="b"
        )
        assert await tx.observed_live(key())
        assert await tx.observe_grant(
            key(), live=False, source_system="okta", observed_at=now + timedelta(seconds=1), vendor_event_id="c"
        )
        observed = await tx.observed(key())
    assert observed is not None
    assert (observed.live, observed.vendor_event_id) == (False, "c")


async def test_evidence_as_of_a_date_with_recertification(record_db: RecordDb) -> None:
    await create(record_db, key(), owner="bob@example.com")
    await move(record_db, key(), EntitlementChange.ACTIVATED, status=S.ACTIVE, granted_at=datetime.now(UTC))
    async with record_transaction(record_db.app, actor="test", topics=TOPICS) as tx:
        decided = tx.now()
        await tx.record_recertification(
            RecertificationEvidence(
                entitlement_key=str(key()),
                decision="certified",
                reviewer="bob@example.com",
                decided_at=decided,
                ticket=TicketRef(system="servicenow", ticket_id="r1", ticket_number="RITM9", kind="recertification"),
            ),
            cause=Cause.new(),
        )
    held_at = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await move(
        record_db, key(), EntitlementChange.REVOKE_REQUESTED, status=S.REVOKING, revoke_requested_at=datetime.now(UTC)
    )
    await move(record_db, key(), EntitlementChange.REVOKED, status=S.REVOKED, verified_at=datetime.now(UTC))
    async with record_db.app.acquire() as conn:
        (row,) = await holdings_at(conn, held_at)
        assert row["status"] == "active"
        assert row["owner"] == "bob@example.com"
        assert row["approving_ticket"] == "RITM1"
        assert row["recertification_decision"] == "certified"
        assert row["recertification_ticket"] == "RITM9"
        assert await holdings_at(conn, datetime.now(UTC)) == []  # revoked since
        assert await holdings_at(conn, held_at - timedelta(days=1)) == []  # not yet requested
        document = await export_evidence(conn, datetime.now(UTC), all_statuses=True)
        assert document["audit_chain"]["ok"]
        assert [r["status"] for r in document["entitlements"]] == ["revoked"]
        evidence = await repository.recertifications_for(conn, key())
        assert [e.decision for e in evidence] == ["certified"]
