"""The audit log is append-only for the service role, and any tampering by someone who can bypass that
(the schema owner) is found by `verify_chain` / `closeloop audit verify` at the first broken position."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus
from closeloop.record import Cause, ChainReport, EntitlementRecord, RecordTopics, record_transaction, verify_chain
from closeloop.record.audit import SELECT_ROWS, AuditRow, row_hash
from tests.integration.provisioning.conftest import RecordDb
from tests.unit.provisioning.factories import key

pytestmark = pytest.mark.integration

TOPICS = RecordTopics(entitlements="t.entitlements", commands="t.commands")
ROWS = 6


class _Rollback(Exception):
    pass


async def seed(db: RecordDb) -> None:
    """Six audit rows: three entitlements requested, then activated."""
    keys = [key(f"okta:user:u{i}@example.com") for i in range(3)]
    for change, status in (
        (EntitlementChange.REQUESTED, EntitlementStatus.PENDING),
        (EntitlementChange.ACTIVATED, EntitlementStatus.ACTIVE),
    ):
        for entitlement in keys:
            async with record_transaction(db.app, actor="provisioning", topics=TOPICS) as tx:
                before = await tx.lock(entitlement)
                after = (before or EntitlementRecord.new(entitlement, status=status)).evolve(
                    status=status, owner="bob@example.com", granted_at=datetime.now(UTC) if before else None
                )
                await tx.apply(before, after, change=change, cause=Cause.new())


async def tampered(db: RecordDb, tamper: Callable[[asyncpg.Connection], Awaitable[None]]) -> ChainReport:
    """Tamper as the owner (bypassing the append-only trigger), verify, then roll everything back."""
    async with db.owner.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
                await tamper(conn)
                report = await verify_chain(conn)
                raise _Rollback
        except _Rollback:
            pass
        assert (await verify_chain(conn)).ok  # rolled back: intact again
    return report


@pytest.fixture
async def chained(record_db: RecordDb) -> RecordDb:
    await seed(record_db)
    async with record_db.app.acquire() as conn:
        report = await verify_chain(conn)
    assert report.ok
    assert report.rows_checked == ROWS
    return record_db


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = actor WHERE false", "DELETE FROM audit_log WHERE false", "TRUNCATE audit_log"],
)
async def test_service_role_cannot_update_or_delete_the_audit_log(
    app_pool: asyncpg.Pool, chained: RecordDb, statement: str
) -> None:
    async with app_pool.acquire() as conn:  # the shared schema, as migrated for every service
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute(statement)
    async with chained.app.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == ROWS


async def test_even_the_owner_hits_the_append_only_trigger(chained: RecordDb, owner_pool: asyncpg.Pool) -> None:
    table = f'"{chained.schema}".audit_log'
    async with owner_pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(f"UPDATE {table} SET actor = $1 WHERE seq = 1", "mallory")  # noqa: S608
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(f"DELETE FROM {table} WHERE seq = 1")  # noqa: S608
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(f"TRUNCATE {table}")


async def test_an_edit_is_found_at_the_edited_row(chained: RecordDb) -> None:
    async def edit(conn: asyncpg.Connection) -> None:
        await conn.execute(
            "UPDATE audit_log SET payload = jsonb_set(payload, '{record,owner}', '\"mallory\"') WHERE seq = 3"
        )

    report = await tampered(chained, edit)
    assert not report.ok
    assert report.first_broken_seq == 3
    assert "edited" in (report.problem or "")
    assert report.rows_checked == 2


async def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(chained: RecordDb) -> None:
    async def forge(conn: asyncpg.Connection) -> None:
        row = AuditRow.from_db(await conn.fetchrow(f"{SELECT_ROWS} WHERE seq = 3"))
        forged = AuditRow(**{**row.__dict__, "actor": "mallory"})
        await conn.execute("UPDATE audit_log SET actor = $1, hash = $2 WHERE seq = 3", "mallory", row_hash(forged))

    report = await tampered(chained, forge)
    assert report.first_broken_seq == 4
    assert "does not link" in (report.problem or "")


async def test_a_deletion_is_found_at_the_missing_row(chained: RecordDb) -> None:
    async def delete(conn: asyncpg.Connection) -> None:
        await conn.execute("DELETE FROM audit_log WHERE seq = 2")

    report = await tampered(chained, delete)
    assert report.first_broken_seq == 2
    assert "missing" in (report.problem or "")


async def test_cutting_off_the_tail_is_found_by_the_chain_head(chained: RecordDb) -> None:
    async def cut(conn: asyncpg.Connection) -> None:
        await conn.execute("DELETE FROM audit_log WHERE seq >= 5")

    report = await tampered(chained, cut)
    assert report.first_broken_seq == 5
    assert "chain head is at seq 6" in (report.problem or "")


async def test_an_insertion_is_found(chained: RecordDb) -> None:
    async def insert_between(conn: asyncpg.Connection) -> None:
        # Make room after seq 2 (renumber the rest upwards, highest first) and slip a row in.
        for seq in range(ROWS, 2, -1):
            await conn.execute("UPDATE audit_log SET seq = seq + 1 WHERE seq = $1", seq)
        row = AuditRow.from_db(await conn.fetchrow(f"{SELECT_ROWS} WHERE seq = 2"))
        intruder = AuditRow(**{**row.__dict__, "seq": 3, "action": "activated", "prev_hash": row.hash, "hash": ""})
        await conn.execute(
            "INSERT INTO audit_log (seq, recorded_at, entity_type, entity_key, action, actor, cause_event_id, correlation_id,"
            " payload, prev_hash, hash, hash_version, appended_by) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9::jsonb,$10,$11,2,$12)",
            3, intruder.recorded_at, intruder.entity_type, intruder.entity_key, intruder.action, intruder.actor,
            intruder.cause_event_id, intruder.correlation_id, json.dumps(intruder.payload), intruder.prev_hash, row_hash(intruder),
            intruder.appended_by,
        )  # fmt: skip

    report = await tampered(chained, insert_between)
    assert not report.ok
    assert report.first_broken_seq == 4  # the intruder links to seq 2 and hashes right; the next row no longer links


async def test_an_appended_row_outside_the_chain_is_found(chained: RecordDb) -> None:
    async def append(conn: asyncpg.Connection) -> None:
        last = AuditRow.from_db(await conn.fetchrow(f"{SELECT_ROWS} ORDER BY seq DESC LIMIT 1"))
        extra = AuditRow(**{**last.__dict__, "seq": ROWS + 1, "prev_hash": last.hash, "action": "revoked"})
        await conn.execute(
            "INSERT INTO audit_log (seq, recorded_at, entity_type, entity_key, action, actor, cause_event_id, correlation_id,"
            " payload, prev_hash, hash, hash_version, appended_by) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9::jsonb,$10,$11,2,$12)",
            extra.seq, extra.recorded_at, extra.entity_type, extra.entity_key, extra.action, extra.actor,
            extra.cause_event_id, extra.correlation_id, json.dumps(extra.payload), extra.prev_hash, row_hash(extra),
            extra.appended_by,
        )  # fmt: skip

    report = await tampered(chained, append)
    assert report.first_broken_seq == ROWS + 1
    assert "chain head" in (report.problem or "")


async def test_a_reordering_is_found(chained: RecordDb) -> None:
    async def swap(conn: asyncpg.Connection) -> None:
        await conn.execute("UPDATE audit_log SET seq = 1000000 WHERE seq = 2")
        await conn.execute("UPDATE audit_log SET seq = 2 WHERE seq = 3")
        await conn.execute("UPDATE audit_log SET seq = 3 WHERE seq = 1000000")

    report = await tampered(chained, swap)
    assert report.first_broken_seq == 2


async def test_an_anchored_head_is_checked(chained: RecordDb) -> None:
    async with chained.app.acquire() as conn:
        head = await verify_chain(conn)
        assert (await verify_chain(conn, expect=(head.head_seq, head.head_hash))).ok
        wrong = await verify_chain(conn, expect=(3, "0" * 64))
        assert wrong.first_broken_seq == 3
        assert "anchored" in (wrong.problem or "")
        beyond = await verify_chain(conn, expect=(99, head.head_hash))
        assert not beyond.ok


async def cli(db: RecordDb, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "CLOSELOOP_DATABASE_URL": db.settings.url.get_secret_value(),
        "CLOSELOOP_AUDIT_CHECKPOINT_KEY_FILE": str(tmp_path / "checkpoint.key"),
        "CLOSELOOP_AUDIT_CHECKPOINT_FILE": str(tmp_path / "checkpoints.jsonl"),
        "COLUMNS": "200",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"import sys; from provisioning.cli import app; sys.argv = ['closeloop', 'audit', *{list(args)!r}]; app()",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_cli_audit_verify_reports_the_first_broken_position(chained: RecordDb, tmp_path: Path) -> None:
    (tmp_path / "checkpoint.key").write_text(secrets.token_hex(32))
    code, out = await cli(chained, tmp_path, "verify", "--json")
    assert code == 1  # a key is configured but nothing was signed yet
    assert "no signed checkpoint" in json.loads(out)["problem"]
    code, out = await cli(chained, tmp_path, "checkpoint", "--json")
    assert code == 0
    assert json.loads(out)["seq"] == ROWS
    code, out = await cli(chained, tmp_path, "verify", "--json")
    assert code == 0
    assert (json.loads(out)["ok"], json.loads(out)["anchors_checked"]) == (True, 1)
    async with chained.owner.acquire() as conn:  # a committed tampering this time
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
        await conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete")
    code, out = await cli(chained, tmp_path, "verify", "--json")
    assert code == 1
    report = json.loads(out)
    assert (report["ok"], report["first_broken_seq"]) == (False, 4)
    async with chained.owner.acquire() as conn:  # the chain after the last checkpoint is broken too
        await conn.execute("UPDATE audit_chain_head SET seq = seq + 1")
    code, _ = await cli(chained, tmp_path, "checkpoint")
    assert code == 1  # never signs over a broken chain
    assert len((tmp_path / "checkpoints.jsonl").read_text().splitlines()) == 1
