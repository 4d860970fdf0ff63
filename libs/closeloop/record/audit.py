"""The append-only, hash-chained audit log: appending under the chain lock, and verifying the chain.

Every row's `hash` is sha256 over the canonical JSON of its fields (seq, recorded_at, entity, action,
actor, cause, payload) *and* the previous row's hash, so editing, deleting, inserting or reordering any
row breaks the chain at that position. Appends lock the single `audit_chain_head` row FOR UPDATE, which
serializes appenders and makes `seq` gapless; the head is kept in step with the last row so that cutting
off the tail is detected as well. Anyone who can rewrite the whole table and the head can recompute a
consistent chain: anchor `head_hash` somewhere else (a ticket, a WORM bucket) and check it with
`verify_chain(..., expect=(seq, hash))`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """An audit row before it is placed in the chain."""

    recorded_at: datetime
    entity_type: str
    entity_key: str
    action: str
    actor: str
    payload: dict[str, Any]
    cause_event_id: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class AuditRow:
    seq: int
    recorded_at: datetime
    entity_type: str
    entity_key: str
    action: str
    actor: str
    cause_event_id: str | None
    correlation_id: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def from_db(cls, row: asyncpg.Record) -> AuditRow:
        payload = row["payload"]
        return cls(
            seq=row["seq"],
            recorded_at=row["recorded_at"],
            entity_type=row["entity_type"],
            entity_key=row["entity_key"],
            action=row["action"],
            actor=row["actor"],
            cause_event_id=row["cause_event_id"],
            correlation_id=row["correlation_id"],
            payload=json.loads(payload) if isinstance(payload, str) else payload,
            prev_hash=row["prev_hash"],
            hash=row["hash"],
        )


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def chain_hash(
    *,
    seq: int,
    recorded_at: datetime,
    entity_type: str,
    entity_key: str,
    action: str,
    actor: str,
    cause_event_id: str | None,
    correlation_id: str | None,
    payload: dict[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "recorded_at": canonical_time(recorded_at),
        "entity_type": entity_type,
        "entity_key": entity_key,
        "action": action,
        "actor": actor,
        "cause_event_id": cause_event_id,
        "correlation_id": correlation_id,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def row_hash(row: AuditRow) -> str:
    return chain_hash(
        seq=row.seq,
        recorded_at=row.recorded_at,
        entity_type=row.entity_type,
        entity_key=row.entity_key,
        action=row.action,
        actor=row.actor,
        cause_event_id=row.cause_event_id,
        correlation_id=row.correlation_id,
        payload=row.payload,
        prev_hash=row.prev_hash,
    )


_COLUMNS = (
    "seq",
    "recorded_at",
    "entity_type",
    "entity_key",
    "action",
    "actor",
    "cause_event_id",
    "correlation_id",
    "payload",
    "prev_hash",
    "hash",
)


async def append_entries(conn: asyncpg.Connection, entries: Sequence[AuditEntry]) -> list[AuditRow]:
    """Append entries to the chain, in order, inside the caller's transaction.

    Locks the chain head until the transaction ends: call this last in a transaction (after the row
    locks on the entitlements), so the serialized section is as short as possible.
    """
    if not entries:
        return []
    if not conn.is_in_transaction():
        raise RuntimeError("audit entries must be appended inside the transaction that makes the change")
    head = await conn.fetchrow("SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE")
    if head is None:
        raise RuntimeError("audit_chain_head is missing its row; the 0010 migration was not applied")
    seq, prev = int(head["seq"]), str(head["hash"])
    rows: list[AuditRow] = []
    for entry in entries:
        seq += 1
        # Round-trip the payload through JSON so the hash covers exactly what jsonb will give back.
        payload = json.loads(canonical_json(entry.payload))
        digest = chain_hash(
            seq=seq,
            recorded_at=entry.recorded_at,
            entity_type=entry.entity_type,
            entity_key=entry.entity_key,
            action=entry.action,
            actor=entry.actor,
            cause_event_id=entry.cause_event_id,
            correlation_id=entry.correlation_id,
            payload=payload,
            prev_hash=prev,
        )
        rows.append(
            AuditRow(
                seq=seq,
                recorded_at=entry.recorded_at,
                entity_type=entry.entity_type,
                entity_key=entry.entity_key,
                action=entry.action,
                actor=entry.actor,
                cause_event_id=entry.cause_event_id,
                correlation_id=entry.correlation_id,
                payload=payload,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    await conn.copy_records_to_table(
        "audit_log",
        columns=_COLUMNS,
        records=[
            (
                r.seq,
                r.recorded_at,
                r.entity_type,
                r.entity_key,
                r.action,
                r.actor,
                r.cause_event_id,
                r.correlation_id,
                canonical_json(r.payload).decode(),
                r.prev_hash,
                r.hash,
            )
            for r in rows
        ],
    )
    await conn.execute("UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = 1", seq, prev)
    return rows


@dataclass(frozen=True)
class ChainReport:
    """Outcome of verifying the chain. `first_broken_seq` is the first position that fails."""

    ok: bool
    rows_checked: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows_checked": self.rows_checked,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "first_broken_seq": self.first_broken_seq,
            "problem": self.problem,
        }


def check_rows(rows: Sequence[AuditRow], *, start_seq: int = 1, start_prev: str = GENESIS_HASH) -> ChainReport:
    """Check a run of rows (ordered by seq) that should continue the chain at (start_seq, start_prev)."""
    expected_seq, prev = start_seq, start_prev
    checked = 0
    for row in rows:
        if row.seq != expected_seq:
            return _broken(
                checked,
                expected_seq,
                prev,
                f"seq {expected_seq} is missing (found {row.seq}): rows deleted or renumbered",
            )
        if row.prev_hash != prev:
            return _broken(
                checked,
                row.seq,
                prev,
                f"seq {row.seq} does not link to the previous row: rows inserted, deleted or reordered",
            )
        if row_hash(row) != row.hash:
            return _broken(checked, row.seq, prev, f"seq {row.seq} does not match its hash: row edited")
        prev = row.hash
        expected_seq += 1
        checked += 1
    return ChainReport(ok=True, rows_checked=checked, head_seq=expected_seq - 1, head_hash=prev)


def _broken(checked: int, seq: int, prev: str, problem: str) -> ChainReport:
    return ChainReport(
        ok=False, rows_checked=checked, head_seq=seq - 1, head_hash=prev, first_broken_seq=seq, problem=problem
    )


async def verify_chain(
    conn: asyncpg.Connection, *, batch_size: int = 5000, expect: tuple[int, str] | None = None
) -> ChainReport:
    """Walk the whole audit log in seq order and report the first broken position, if any.

    `expect=(seq, hash)` checks an externally anchored head too: the row at `seq` must carry `hash`.
    Runs in a REPEATABLE READ snapshot so concurrent appends do not look like tampering (or inside
    the caller's transaction, when there is one).
    """
    if conn.is_in_transaction():
        return await _verify(conn, batch_size, expect)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _verify(conn, batch_size, expect)


async def _verify(conn: asyncpg.Connection, batch_size: int, expect: tuple[int, str] | None) -> ChainReport:
    expected_seq, prev, checked = 1, GENESIS_HASH, 0
    anchor_seen = expect is None
    last_seq = 0
    while True:
        records = await conn.fetch("SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2", last_seq, batch_size)
        if not records:
            break
        rows = [AuditRow.from_db(r) for r in records]
        report = check_rows(rows, start_seq=expected_seq, start_prev=prev)
        if not report.ok:
            return ChainReport(
                ok=False,
                rows_checked=checked + report.rows_checked,
                head_seq=report.head_seq,
                head_hash=report.head_hash,
                first_broken_seq=report.first_broken_seq,
                problem=report.problem,
            )
        if expect is not None and not anchor_seen:
            for row in rows:
                if row.seq == expect[0]:
                    if row.hash != expect[1]:
                        return _broken(checked, row.seq, prev, f"seq {row.seq} does not carry the anchored hash")
                    anchor_seen = True
        checked += report.rows_checked
        expected_seq, prev = report.head_seq + 1, report.head_hash
        last_seq = rows[-1].seq
    head = await conn.fetchrow("SELECT seq, hash FROM audit_chain_head WHERE id = 1")
    if head is None:
        return _broken(checked, expected_seq, prev, "the chain head row is missing")
    last_seq, head_seq = expected_seq - 1, int(head["seq"])
    if head_seq != last_seq or head["hash"] != prev:
        # Rows beyond the head were appended outside the chain; a head beyond the rows means a cut tail.
        return _broken(
            checked,
            min(head_seq, last_seq) + 1,
            prev,
            f"the chain head is at seq {head_seq} but the log ends at seq {last_seq}: "
            "rows deleted from the end, or appended outside the chain",
        )
    if not anchor_seen and expect is not None:
        return _broken(checked, expect[0], prev, f"anchored seq {expect[0]} is not in the log")
    return ChainReport(ok=True, rows_checked=checked, head_seq=expected_seq - 1, head_hash=prev)


async def history(conn: asyncpg.Connection, entity_key: str) -> list[AuditRow]:
    """Every audit row of one entity, oldest first."""
    rows = await conn.fetch("SELECT * FROM audit_log WHERE entity_key = $1 ORDER BY seq", entity_key)
    return [AuditRow.from_db(r) for r in rows]
