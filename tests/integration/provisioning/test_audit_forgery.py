"""A service role cannot produce an audit row that verifies unless audit_append made it: direct writes,
a forged hash handed to the function, rewriting, and stand-in tables all fail, and the chain still
verifies afterwards. Also: the Python mirror of the database's hash agrees on hostile strings."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from closeloop.record import verify_chain
from closeloop.record.audit import SELECT_ROWS, AuditEntry, AuditRow, append_entries, row_hash
from closeloop.record.checkpoint import (
    CheckpointKey,
    CheckpointLog,
    chain_id,
    checkpoint_forever,
    verify_against_checkpoints,
)
from tests.integration.provisioning.conftest import RecordDb
from tests.integration.provisioning.harness import eventually

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def entry(n: int, **overrides: object) -> dict[str, object]:
    return {
        "recorded_at": T0.isoformat(),
        "entity_type": "entitlement",
        "entity_key": f"okta:user:u{n}@example.com|okta:group:00g1|member",
        "action": "requested",
        "actor": "provisioning",
        "cause_event_id": f"evt-{n}",
        "correlation_id": None,
        "payload": {"n": n},
        **overrides,
    }


async def appended(db: RecordDb, *entries: dict[str, object]) -> list[asyncpg.Record]:
    async with db.app.acquire() as conn, conn.transaction():
        return await conn.fetch("SELECT * FROM audit_append($1::jsonb)", json.dumps(list(entries)))


@pytest.fixture
async def seeded(record_db: RecordDb) -> RecordDb:
    await appended(record_db, *(entry(n) for n in range(1, 4)))
    return record_db


async def assert_intact(db: RecordDb, rows: int) -> None:
    async with db.app.acquire() as conn:
        report = await verify_chain(conn)
    assert report.ok, report
    assert report.rows_checked == rows


async def forged_next_row(conn: asyncpg.Connection) -> AuditRow:
    """What a forger would write: the next seq, linked and hashed exactly as audit_append would."""
    last = AuditRow.from_db(await conn.fetchrow(f"{SELECT_ROWS} ORDER BY seq DESC LIMIT 1"))
    forged = AuditRow(
        **{**last.__dict__, "seq": last.seq + 1, "action": "revoked", "prev_hash": last.hash, "actor": "expiry"}
    )
    return AuditRow(**{**forged.__dict__, "hash": row_hash(forged)})


# Each statement with the fields of the forged row it takes, in parameter order.
DIRECT_WRITES = [
    (
        "INSERT INTO audit_log (seq, recorded_at, entity_type, entity_key, action, actor, payload, prev_hash, hash,"
        " hash_version, appended_by) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, 2, $10)",
        (
            "seq",
            "recorded_at",
            "entity_type",
            "entity_key",
            "action",
            "actor",
            "payload",
            "prev_hash",
            "hash",
            "appended_by",
        ),
    ),
    ("UPDATE audit_chain_head SET seq = $1, hash = $2", ("seq", "hash")),
    ("UPDATE audit_log SET actor = $1, hash = $2 WHERE seq = 1", ("actor", "hash")),
    ("DELETE FROM audit_log WHERE seq = 3", ()),
    ("TRUNCATE audit_log", ()),
    ("ALTER TABLE audit_log DISABLE TRIGGER USER", ()),
    ("SET ROLE closeloop_audit_writer", ()),
    (
        "CREATE OR REPLACE FUNCTION audit_append(entries jsonb) RETURNS TABLE (out_seq bigint, out_prev_hash text,"
        " out_hash text, out_appended_by text) LANGUAGE sql AS $$SELECT 1::bigint, '', '', ''$$",
        (),
    ),
]


@pytest.mark.parametrize(("statement", "fields"), DIRECT_WRITES)
async def test_a_service_role_cannot_write_the_chain_directly(
    seeded: RecordDb, statement: str, fields: tuple[str, ...]
) -> None:
    async with seeded.app.acquire() as conn:
        forged = (await forged_next_row(conn)).__dict__
        args = [json.dumps(forged[f]) if f == "payload" else forged[f] for f in fields]
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement, *args)
    await assert_intact(seeded, 3)


@pytest.mark.parametrize(
    "forgery",
    [
        {"hash": "f" * 64},
        {"seq": 99},
        {"prev_hash": "0" * 64},
        {"appended_by": "closeloop_provisioning"},
        {"hash_version": 1},
        {"payload": "not an object"},
        {"actor": None},
        {"recorded_at": "infinity"},
    ],
)
async def test_audit_append_refuses_chain_fields_from_the_caller(seeded: RecordDb, forgery: dict[str, object]) -> None:
    with pytest.raises(asyncpg.InvalidParameterValueError):
        await appended(seeded, entry(9, **forgery))
    await assert_intact(seeded, 3)


async def test_audit_append_computes_the_hash_and_names_the_calling_role(seeded: RecordDb) -> None:
    [row] = await appended(seeded, entry(4, actor="expiry"))
    async with seeded.app.acquire() as conn:
        stored = AuditRow.from_db(await conn.fetchrow(f"{SELECT_ROWS} WHERE seq = 4"))
        caller = await conn.fetchval("SELECT session_user")
    assert (row["out_seq"], row["out_hash"], row["out_appended_by"]) == (4, stored.hash, caller)
    assert (stored.hash_version, stored.appended_by, stored.actor) == (2, caller, "expiry")
    assert row_hash(stored) == stored.hash
    # Claiming another role's name breaks the row: appended_by is covered by the hash.
    assert row_hash(AuditRow(**{**stored.__dict__, "appended_by": "closeloop_provisioning"})) != stored.hash
    await assert_intact(seeded, 4)


async def test_temporary_tables_cannot_stand_in_for_the_chain(seeded: RecordDb) -> None:
    async with seeded.app.acquire() as conn, conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE audit_chain_head (id smallint, seq bigint, hash text, chain_id uuid) ON COMMIT DROP"
        )
        await conn.execute("INSERT INTO audit_chain_head VALUES (1, 100, repeat('f', 64), gen_random_uuid())")
        await conn.execute("CREATE TEMP TABLE audit_log (LIKE pg_temp.audit_chain_head) ON COMMIT DROP")
        [row] = await conn.fetch("SELECT * FROM audit_append($1::jsonb)", json.dumps([entry(4)]))
        assert row["out_seq"] == 4  # the real head, not the stand-in
    await assert_intact(seeded, 4)


async def test_a_rolled_back_append_leaves_no_trace(seeded: RecordDb) -> None:
    async with seeded.app.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.fetch("SELECT * FROM audit_append($1::jsonb)", json.dumps([entry(4)]))
        await tx.rollback()
    await assert_intact(seeded, 3)


HOSTILE = [
    "".join(chr(c) for c in range(1, 32)),
    'quote " backslash \\ slash / del \x7f',
    "ünïcödé ✓ 𝄞 emoji 🙂 rtl \u202e bom \ufeff line sep \u2028",
    "",
    "x" * 5000,
]


async def test_the_python_hash_matches_the_database_on_hostile_values(record_db: RecordDb) -> None:
    entries = [
        AuditEntry(
            recorded_at=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            entity_type=text,
            entity_key=text,
            action=text,
            actor=text,
            cause_event_id=text or None,
            correlation_id=text,
            payload={
                text: text,
                "nested": {"b": [1, 2.5, -0.0, 1e-7, 1e300, 10**30, True, None], "a": {"é": text}},
                "long key " * 20: {},
            },
        )
        for text in HOSTILE
    ]
    async with record_db.app.acquire() as conn, conn.transaction():
        rows = await append_entries(conn, entries)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    await assert_intact(record_db, len(HOSTILE))


async def test_provisioning_signs_the_head_periodically_and_never_a_broken_chain(
    seeded: RecordDb, tmp_path: Path
) -> None:
    key, log = CheckpointKey(secrets.token_bytes(32)), CheckpointLog(tmp_path / "checkpoints.jsonl")
    stop = asyncio.Event()
    task = asyncio.create_task(checkpoint_forever(seeded.app, key, log, 0.05, stop))
    try:
        async with seeded.app.acquire() as conn:
            this_chain = await chain_id(conn)

        async def signed_up_to(seq: int) -> bool:
            return any(c.seq == seq for c in log.read(key, this_chain)[0])

        await eventually(lambda: signed_up_to(3))
        await appended(seeded, entry(4))
        await eventually(lambda: signed_up_to(4))
        async with seeded.owner.acquire() as conn:  # the schema owner cuts the tail and moves the head back
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
            await conn.execute("DELETE FROM audit_log WHERE seq = 4")
            await conn.execute("UPDATE audit_chain_head SET seq = 3, hash = (SELECT hash FROM audit_log WHERE seq = 3)")
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
        await appended(seeded, entry(5))  # a new head at seq 4 that does not continue the signed one
        await asyncio.sleep(0.3)  # several more rounds: each one refuses (and logs) instead of signing
        assert not task.done()
        assert max(c.seq for c in log.read(key, this_chain)[0]) == 4
        async with seeded.app.acquire() as conn:
            report = await verify_against_checkpoints(conn, key, log)
        assert (report.ok, report.first_broken_seq) == (False, 4)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
