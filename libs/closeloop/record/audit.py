"""The append-only, hash-chained audit log: appending through the database, and verifying the chain.

Every row's `hash` covers its fields *and* the previous row's hash, so editing, deleting, inserting or
reordering any row breaks the chain at that position; `audit_chain_head` is kept in step with the last
row so that cutting off the tail is detected as well.

Rows are appended only by the database function `audit_append(entries jsonb)` (migration 0342), owned by
a role no service can log in as: it locks the head, numbers the rows, records the calling role
(`appended_by`) and computes the hash itself (hash_version 2). The service roles may read the log but
never write it, so a compromised service cannot plant a row with a hash of its choosing, move the head,
or pass its rows off as another role's. Rows from before that migration keep their version 1 hash.

Anyone who can rewrite the whole table and the head (the schema owner) can still recompute a consistent
chain: signed checkpoints of the head (closeloop.record.checkpoint), kept outside the database, catch
that; `verify_chain(..., anchors=...)` checks the rows against them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

GENESIS_HASH = "0" * 64
HASH_VERSION = 2  # what audit_append writes

# What the verifier reads: the stored columns plus jsonb's own text form of the payload, which the
# version 2 hash covers byte for byte.
SELECT_ROWS = "SELECT *, payload::text AS payload_text FROM audit_log"


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

    def as_json(self) -> dict[str, Any]:
        """The entry as audit_append takes it: no seq, no hashes (the database computes those)."""
        return {
            "recorded_at": self.recorded_at.isoformat(),
            "entity_type": self.entity_type,
            "entity_key": self.entity_key,
            "action": self.action,
            "actor": self.actor,
            "cause_event_id": self.cause_event_id,
            "correlation_id": self.correlation_id,
            "payload": self.payload,
        }


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
    hash_version: int = 1
    appended_by: str | None = None  # login role that appended the row (version 2)
    payload_text: str | None = None  # jsonb's text form of the payload, as hashed (version 2)

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
            hash_version=row.get("hash_version", 1),
            appended_by=row.get("appended_by"),
            payload_text=row.get("payload_text"),
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
    """Version 1 (rows written before audit_append): sha256 of the canonical JSON of the fields."""
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


def _jsonb_scalar(value: str | int | None) -> str:
    # jsonb escapes strings exactly as json.dumps(ensure_ascii=False) does: \" \\ \b \f \n \r \t, and
    # \u00XX (lower-case hex) for the other control characters; everything else is kept as is.
    return json.dumps(value, ensure_ascii=False)


def chain_hash_v2(
    *,
    seq: int,
    recorded_at: datetime,
    entity_type: str,
    entity_key: str,
    action: str,
    actor: str,
    appended_by: str,
    cause_event_id: str | None,
    correlation_id: str | None,
    payload_text: str,
    prev_hash: str,
) -> str:
    """Version 2, as audit_append computes it: sha256 of `jsonb_build_array(2, seq, ...)::text`."""
    at = recorded_at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    scalars = (at, entity_type, entity_key, action, actor, appended_by, cause_event_id, correlation_id)
    text = ", ".join(
        (str(HASH_VERSION), str(seq), *map(_jsonb_scalar, scalars), payload_text, _jsonb_scalar(prev_hash))
    )
    return hashlib.sha256(f"[{text}]".encode()).hexdigest()


_LINKED_FIELDS = ("seq", "recorded_at", "entity_type", "entity_key", "action", "actor", "cause_event_id",
                  "correlation_id", "prev_hash")  # fmt: skip


def row_hash(row: AuditRow) -> str:
    """The hash `row` should carry, by its hash version."""
    fields: dict[str, Any] = {name: getattr(row, name) for name in _LINKED_FIELDS}
    if row.hash_version == 2:
        if row.payload_text is None or row.appended_by is None:
            raise ValueError(f"seq {row.seq}: a version 2 row is checked on its stored payload text and appender")
        return chain_hash_v2(**fields, appended_by=row.appended_by, payload_text=row.payload_text)
    return chain_hash(**fields, payload=row.payload)


async def append_entries(conn: asyncpg.Connection, entries: Sequence[AuditEntry]) -> list[AuditRow]:
    """Append entries to the chain, in order, inside the caller's transaction: one call for all of them.

    audit_append locks the chain head until the transaction ends: call this last in a transaction
    (after the row locks on the entitlements), so the serialized section is as short as possible.
    """
    if not entries:
        return []
    if not conn.is_in_transaction():
        raise RuntimeError("audit entries must be appended inside the transaction that makes the change")
    # Each entry is serialised once, here (the function hashes jsonb's own text form, so no canonical form
    # is needed); the returned rows carry the payloads as given (read a row back for jsonb's own form).
    document = json.dumps([e.as_json() for e in entries], ensure_ascii=False, allow_nan=False)
    appended = await conn.fetch(
        "SELECT out_seq, out_prev_hash, out_hash, out_appended_by FROM audit_append($1::jsonb)", document
    )
    return [
        AuditRow(
            seq=row["out_seq"],
            recorded_at=entry.recorded_at,
            entity_type=entry.entity_type,
            entity_key=entry.entity_key,
            action=entry.action,
            actor=entry.actor,
            cause_event_id=entry.cause_event_id,
            correlation_id=entry.correlation_id,
            payload=entry.payload,
            prev_hash=row["out_prev_hash"],
            hash=row["out_hash"],
            hash_version=HASH_VERSION,
            appended_by=row["out_appended_by"],
        )
        for entry, row in zip(entries, appended, strict=True)
    ]


@dataclass(frozen=True)
class ChainReport:
    """Outcome of verifying the chain. `first_broken_seq` is the first position that fails."""

    ok: bool
    rows_checked: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None
    chain_id: str | None = None
    anchors_checked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows_checked": self.rows_checked,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "first_broken_seq": self.first_broken_seq,
            "problem": self.problem,
            "chain_id": self.chain_id,
            "anchors_checked": self.anchors_checked,
        }


def check_rows(
    rows: Sequence[AuditRow], *, start_seq: int = 1, start_prev: str = GENESIS_HASH, start_version: int = 1
) -> ChainReport:
    """Check a run of rows (ordered by seq) that should continue the chain at (start_seq, start_prev)."""
    expected_seq, prev, version = start_seq, start_prev, start_version
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
        if row.hash_version < version or row.hash_version not in (1, HASH_VERSION):
            # audit_append only ever writes the current version: an older one after it was written by hand.
            return _broken(checked, row.seq, prev, f"seq {row.seq} has hash version {row.hash_version} after {version}")
        try:
            expected_hash = row_hash(row)
        except ValueError as exc:
            return _broken(checked, row.seq, prev, str(exc))
        if expected_hash != row.hash:
            return _broken(checked, row.seq, prev, f"seq {row.seq} does not match its hash: row edited")
        prev, version = row.hash, row.hash_version
        expected_seq += 1
        checked += 1
    return ChainReport(ok=True, rows_checked=checked, head_seq=expected_seq - 1, head_hash=prev)


def _broken(checked: int, seq: int, prev: str, problem: str) -> ChainReport:
    return ChainReport(
        ok=False, rows_checked=checked, head_seq=seq - 1, head_hash=prev, first_broken_seq=seq, problem=problem
    )


async def verify_chain(
    conn: asyncpg.Connection,
    *,
    batch_size: int = 5000,
    expect: tuple[int, str] | None = None,
    anchors: Mapping[int, str] | None = None,
    since: tuple[int, str] | None = None,
) -> ChainReport:
    """Walk the whole audit log in seq order and report the first broken position, if any.

    `anchors` maps seq -> hash recorded outside the database (signed checkpoints; `expect` adds one):
    the row at each anchored seq must carry that hash, and the log must reach every anchored seq.
    `since=(seq, hash)` checks only the rows after `seq`, which must continue from `hash` (the writer of
    checkpoints uses it to check what was appended since its last one).
    Runs in a REPEATABLE READ snapshot so concurrent appends do not look like tampering (or inside
    the caller's transaction, when there is one).
    """
    wanted = dict(anchors or {})
    if expect is not None:
        if wanted.get(expect[0], expect[1]) != expect[1]:
            return _broken(0, expect[0], GENESIS_HASH, f"two different anchored hashes for seq {expect[0]}")
        wanted[expect[0]] = expect[1]
    async with snapshot(conn):
        return await _verify(conn, batch_size, wanted, since)


def snapshot(conn: asyncpg.Connection) -> AbstractAsyncContextManager[object]:
    """One consistent view of the log: a read-only REPEATABLE READ transaction, or the caller's own."""
    if conn.is_in_transaction():
        return nullcontext()
    transaction: AbstractAsyncContextManager[object] = conn.transaction(isolation="repeatable_read", readonly=True)
    return transaction


def _check_anchors(rows: Sequence[AuditRow], anchors: Mapping[int, str], checked: int) -> ChainReport | None:
    for row in rows:
        anchored = anchors.get(row.seq)
        if anchored is not None and row.hash != anchored:
            return _broken(
                checked, row.seq, row.prev_hash, f"seq {row.seq} does not carry the anchored hash: history rewritten"
            )
    return None


async def _verify(
    conn: asyncpg.Connection, batch_size: int, anchors: Mapping[int, str], since: tuple[int, str] | None
) -> ChainReport:
    if anchors.get(0, GENESIS_HASH) != GENESIS_HASH:
        return _broken(0, 1, GENESIS_HASH, "the anchored hash at seq 0 is not the genesis hash")
    last_seq, prev = since or (0, GENESIS_HASH)
    expected_seq, version, checked = last_seq + 1, 1, 0
    while True:
        records = await conn.fetch(f"{SELECT_ROWS} WHERE seq > $1 ORDER BY seq LIMIT $2", last_seq, batch_size)
        if not records:
            break
        rows = [AuditRow.from_db(r) for r in records]
        report = check_rows(rows, start_seq=expected_seq, start_prev=prev, start_version=version)
        if not report.ok:
            return ChainReport(
                ok=False,
                rows_checked=checked + report.rows_checked,
                head_seq=report.head_seq,
                head_hash=report.head_hash,
                first_broken_seq=report.first_broken_seq,
                problem=report.problem,
            )
        broken = _check_anchors(rows, anchors, checked)
        if broken is not None:
            return broken
        checked += report.rows_checked
        expected_seq, prev, version = report.head_seq + 1, report.head_hash, rows[-1].hash_version
        last_seq = rows[-1].seq
    head = await conn.fetchrow("SELECT * FROM audit_chain_head WHERE id = 1")
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
    beyond = [seq for seq in anchors if seq > last_seq]
    if beyond:
        return _broken(
            checked, last_seq + 1, prev, f"anchored seq {max(beyond)} is not in the log (it ends at seq {last_seq})"
        )
    chain_id = head.get("chain_id")
    return ChainReport(
        ok=True,
        rows_checked=checked,
        head_seq=last_seq,
        head_hash=prev,
        chain_id=str(chain_id) if chain_id is not None else None,
        anchors_checked=len(anchors),
    )


async def history(conn: asyncpg.Connection, entity_key: str) -> list[AuditRow]:
    """Every audit row of one entity, oldest first."""
    rows = await conn.fetch(f"{SELECT_ROWS} WHERE entity_key = $1 ORDER BY seq", entity_key)
    return [AuditRow.from_db(r) for r in rows]
