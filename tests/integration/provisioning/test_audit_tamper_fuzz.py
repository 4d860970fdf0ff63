"""1,000 random tamperings by someone who can bypass every grant (the schema owner) but does not hold the
checkpoint key: edits, deletions, insertions, reorderings, truncations and consistent rewrites, half of
them covered up by recomputing every later hash and the chain head. Each runs in a transaction that is
rolled back; `verify_against_checkpoints` must find every one. The figures per kind are printed
(`pytest -s`)."""

from __future__ import annotations

import json
import random
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from closeloop.record.audit import (
    GENESIS_HASH,
    SELECT_ROWS,
    AuditEntry,
    AuditRow,
    append_entries,
    row_hash,
    verify_chain,
)
from closeloop.record.checkpoint import (
    CheckpointKey,
    CheckpointLog,
    verify_against_checkpoints,
    write_checkpoint,
)
from tests.integration.provisioning.conftest import RecordDb

pytestmark = pytest.mark.integration

TAMPERINGS = 1000
ROWS = 24
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
Tamper = Callable[[asyncpg.Connection, random.Random], Awaitable[None]]


async def rows_of(conn: asyncpg.Connection) -> list[AuditRow]:
    return [AuditRow.from_db(r) for r in await conn.fetch(f"{SELECT_ROWS} ORDER BY seq")]


async def relink(conn: asyncpg.Connection, start_seq: int) -> None:
    """Cover up: recompute prev_hash and hash from `start_seq` on and move the head to the new last row,
    as audit_append would have, so the chain alone verifies again."""
    rows = await rows_of(conn)
    prev = next((r.hash for r in reversed(rows) if r.seq < start_seq), GENESIS_HASH)
    updates = []
    for row in rows:
        if row.seq < start_seq:
            continue
        digest = row_hash(replace(row, prev_hash=prev))
        updates.append((prev, digest, row.seq))
        prev = digest
    # Temporary values first: the new hashes may collide with old ones under the UNIQUE constraint.
    await conn.executemany("UPDATE audit_log SET hash = 'tmp' || seq WHERE seq = $1", [(u[2],) for u in updates])
    await conn.executemany("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3", updates)
    last = rows[-1].seq if rows else 0
    await conn.execute("UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = 1", last, prev)


PARKED = 1_000_000  # seq is a positive primary key: rows are moved out of the way through here


async def shift(conn: asyncpg.Connection, from_seq: int, by: int) -> None:
    """Renumber the rows from `from_seq` on by `by` (in two steps, so no two rows share a seq)."""
    await conn.execute("UPDATE audit_log SET seq = seq + $2 WHERE seq >= $1", from_seq, PARKED + by)
    await conn.execute("UPDATE audit_log SET seq = seq - $1 WHERE seq > $1 / 2", PARKED)


async def edit(conn: asyncpg.Connection, rnd: random.Random) -> int:
    seq = rnd.randint(1, ROWS)
    column, value = rnd.choice(
        [
            ("actor", "'mallory'"),
            ("action", "'revoked'"),
            ("entity_key", "entity_key || 'x'"),
            ("appended_by", "'closeloop_provisioning'"),
            ("cause_event_id", "'evt-forged'"),
            ("correlation_id", "coalesce(correlation_id, '') || 'x'"),
            ("recorded_at", "recorded_at - interval '1 day'"),
            ("payload", 'payload || \'{"owner": "mallory"}\'::jsonb'),
            ("payload", "payload - 'n'"),
        ]
    )
    await conn.execute(f"UPDATE audit_log SET {column} = {value} WHERE seq = $1", seq)  # noqa: S608
    return seq


async def delete(conn: asyncpg.Connection, rnd: random.Random) -> int:
    seq = rnd.randint(1, ROWS)
    await conn.execute("DELETE FROM audit_log WHERE seq = $1", seq)
    if rnd.random() < 0.5:  # close the gap
        await shift(conn, seq + 1, -1)
    return seq


async def insert(conn: asyncpg.Connection, rnd: random.Random) -> int:
    # Into the signed history. A row the owner appends after the latest checkpoint, hashed correctly, is
    # indistinguishable from a real append until a later checkpoint: that window is the interval.
    seq = rnd.randint(1, ROWS)
    await shift(conn, seq, +1)
    source = AuditRow.from_db(await conn.fetchrow(f"{SELECT_ROWS} WHERE seq <> $1 ORDER BY random() LIMIT 1", seq))
    intruder = replace(source, seq=seq, action="activated", actor="mallory")
    await conn.execute(
        "INSERT INTO audit_log (seq, recorded_at, entity_type, entity_key, action, actor, cause_event_id,"
        " correlation_id, payload, prev_hash, hash, hash_version, appended_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, 2, $12)",
        seq, intruder.recorded_at, intruder.entity_type, intruder.entity_key, intruder.action, intruder.actor,
        intruder.cause_event_id, intruder.correlation_id, json.dumps(intruder.payload), intruder.prev_hash,
        secrets.token_hex(32), intruder.appended_by,
    )  # fmt: skip
    return seq


async def reorder(conn: asyncpg.Connection, rnd: random.Random) -> int:
    a, b = sorted(rnd.sample(range(1, ROWS + 1), 2))
    await conn.execute("UPDATE audit_log SET seq = $1 WHERE seq = $2", PARKED, a)
    await conn.execute("UPDATE audit_log SET seq = $1 WHERE seq = $2", a, b)
    await conn.execute("UPDATE audit_log SET seq = $1 WHERE seq = $2", b, PARKED)
    return a


async def truncate(conn: asyncpg.Connection, rnd: random.Random) -> int:
    seq = rnd.randint(1, ROWS)
    await conn.execute("DELETE FROM audit_log WHERE seq >= $1", seq)
    return seq


async def rewrite(conn: asyncpg.Connection, rnd: random.Random) -> int:
    """Several rows edited at once (then, like every kind, possibly covered up)."""
    seqs = sorted(rnd.sample(range(1, ROWS + 1), rnd.randint(2, 6)))
    await conn.execute("UPDATE audit_log SET actor = actor || '-rewritten' WHERE seq = ANY($1::bigint[])", seqs)
    return seqs[0]


KINDS = {"edit": edit, "delete": delete, "insert": insert, "reorder": reorder, "truncate": truncate, "rewrite": rewrite}


async def seed(db: RecordDb) -> None:
    rnd = random.Random(7)
    entries = [
        AuditEntry(
            recorded_at=T0 + timedelta(seconds=n),
            entity_type=rnd.choice(["entitlement", "command", "identity"]),
            entity_key=f"okta:user:u{n % 5}@example.com|okta:group:00g{n}|member",
            action=rnd.choice(["requested", "activated", "revoke_issued"]),
            actor=rnd.choice(["provisioning", "expiry"]),
            cause_event_id=f"evt-{n}",
            correlation_id=f"corr-{n}" if n % 3 else None,
            payload={"n": n, "record": {"owner": "bob@example.com", "tickets": [f"RITM{n:07d}"]}},
        )
        for n in range(ROWS)
    ]
    for start in range(0, ROWS, 8):  # a few transactions, several rows each
        async with db.app.acquire() as conn, conn.transaction():
            await append_entries(conn, entries[start : start + 8])


async def test_a_thousand_random_tamperings_are_all_detected(record_db: RecordDb, tmp_path: Path) -> None:
    await seed(record_db)
    key = CheckpointKey(secrets.token_bytes(32))
    checkpoints = CheckpointLog(tmp_path / "checkpoints.jsonl")
    async with record_db.app.acquire() as conn:
        signed = await write_checkpoint(conn, key, checkpoints)
        assert (signed.seq, (await verify_against_checkpoints(conn, key, checkpoints)).ok) == (ROWS, True)

    rnd = random.Random(20261204)
    tried: Counter[str] = Counter()
    detected: Counter[str] = Counter()
    chain_alone: Counter[str] = Counter()  # found even without the checkpoint
    async with record_db.owner.acquire() as conn:
        for _ in range(TAMPERINGS):
            kind = rnd.choice(sorted(KINDS))
            covered = kind == "truncate" or rnd.random() < 0.5
            tx = conn.transaction()
            await tx.start()
            try:
                await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
                first = await KINDS[kind](conn, rnd)
                if covered:
                    await relink(conn, first)
                name = f"{kind}{'+cover-up' if covered else ''}"
                tried[name] += 1
                if not (await verify_against_checkpoints(conn, key, checkpoints)).ok:
                    detected[name] += 1
                if not (await verify_chain(conn)).ok:
                    chain_alone[name] += 1
            finally:
                await tx.rollback()
        assert (await verify_against_checkpoints(conn, key, checkpoints)).ok  # everything rolled back

    print(f"\naudit tamperings: {sum(tried.values())} tried, {sum(detected.values())} detected")
    for name in sorted(tried):
        print(
            f"  {name:<20} tried {tried[name]:>4}  detected {detected[name]:>4}"
            f"  (by the chain alone, without the checkpoint: {chain_alone[name]})"
        )
    assert sum(tried.values()) == TAMPERINGS
    assert detected == tried
    # The cover-ups are exactly what only the signed checkpoint catches.
    assert chain_alone["rewrite+cover-up"] == 0
    assert chain_alone["rewrite"] == tried["rewrite"]
