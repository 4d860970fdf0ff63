"""Stored revocation triggers, and which records a trigger reaches (held by a person, owned, in a project)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from closeloop.contracts.entitlements import TicketRef
from closeloop.record import REVOCABLE_STATUSES, EntitlementRecord, repository
from closeloop.record.repository import record_from_row
from expiry.store.common import E_COLUMNS, ID_PART_SQL, REVOCABLE_SQL, lock_clause


@dataclass(frozen=True)
class StoredTrigger:
    id: int
    kind: str
    subject: str
    principals: tuple[str, ...]
    names: tuple[str, ...]
    project: str | None
    ticket: TicketRef | None
    source_event_id: str
    correlation_id: str
    completed: bool

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> StoredTrigger:
        ticket = row["ticket"]
        if isinstance(ticket, str):
            ticket = json.loads(ticket)
        return cls(
            id=row["id"],
            kind=row["kind"],
            subject=row["subject"],
            principals=tuple(row["principals"]),
            names=tuple(row["names"]),
            project=row["project"],
            ticket=TicketRef.model_validate(ticket) if ticket else None,
            source_event_id=row["source_event_id"],
            correlation_id=row["correlation_id"],
            completed=row["completed_at"] is not None,
        )


async def record_trigger(
    conn: asyncpg.Connection,
    *,
    kind: str,
    subject: str,
    principals: Iterable[str] = (),
    names: Iterable[str] = (),
    project: str | None = None,
    ticket: TicketRef | None = None,
    source_event_id: str,
    correlation_id: str,
    occurred_at: datetime,
    now: datetime,
) -> StoredTrigger:
    """Store a trigger once per source event and return it (the existing one on a repeat)."""
    row = await conn.fetchrow(
        "INSERT INTO expiry_triggers (kind, subject, principals, names, project, ticket, source_event_id,"
        " correlation_id, occurred_at, recorded_at) VALUES ($1, $2, $3::text[], $4::text[], $5, $6::jsonb, $7, $8,"
        " $9, $10) ON CONFLICT (source_event_id) DO NOTHING RETURNING *",
        kind,
        subject,
        sorted(set(principals)),
        sorted(set(names)),
        project,
        json.dumps(ticket.model_dump(mode="json")) if ticket else None,
        source_event_id,
        correlation_id,
        occurred_at,
        now,
    )
    if row is None:
        row = await conn.fetchrow("SELECT * FROM expiry_triggers WHERE source_event_id = $1", source_event_id)
    return StoredTrigger.from_row(row)


async def trigger_by_source_event(conn: asyncpg.Connection, source_event_id: str) -> StoredTrigger | None:
    row = await conn.fetchrow("SELECT * FROM expiry_triggers WHERE source_event_id = $1", source_event_id)
    return StoredTrigger.from_row(row) if row else None


async def open_triggers(conn: asyncpg.Connection, limit: int = 100) -> list[StoredTrigger]:
    rows = await conn.fetch("SELECT * FROM expiry_triggers WHERE completed_at IS NULL ORDER BY id LIMIT $1", limit)
    return [StoredTrigger.from_row(r) for r in rows]


async def count_trigger_progress(
    conn: asyncpg.Connection, trigger_id: int, *, revoked: int = 0, flagged: int = 0
) -> None:
    if revoked or flagged:
        await conn.execute(
            "UPDATE expiry_triggers SET revoked_count = revoked_count + $2, flagged_count = flagged_count + $3"
            " WHERE id = $1",
            trigger_id,
            revoked,
            flagged,
        )


TRIGGER_LOCK_CLASS = 0x65787079  # advisory lock class of "a worker is applying trigger <id>"


async def try_lock_trigger(conn: asyncpg.Connection, trigger_id: int) -> bool:
    """Session lock so one worker applies a trigger at a time (released on unlock or disconnect)."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", TRIGGER_LOCK_CLASS, trigger_id))


async def unlock_trigger(conn: asyncpg.Connection, trigger_id: int) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1, $2)", TRIGGER_LOCK_CLASS, trigger_id)


async def complete_trigger(conn: asyncpg.Connection, trigger_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE expiry_triggers SET completed_at = $2 WHERE id = $1 AND completed_at IS NULL", trigger_id, now
    )


async def expand_identities(conn: asyncpg.Connection, principals: Iterable[str], names: Iterable[str]) -> list[str]:
    """Other names of these identities from the identity graph (every account linked to any of them)."""
    principals, names = set(principals), set(names)
    found = set(await repository.principals_for_alias(conn, principals | names))
    for principal in sorted(principals | found):
        identity = await repository.load_identity(conn, principal)
        if identity is not None:
            found.update(identity.aliases)
    return sorted(found - principals)


_OWNED_BY_SQL = f"""
SELECT {E_COLUMNS} FROM entitlements e
WHERE {REVOCABLE_SQL} AND e.owner IS NOT NULL
  AND (e.owner = ANY($1::text[]) OR lower(e.owner) = ANY($2::text[])
       OR {ID_PART_SQL.format(column="e.owner")} = ANY($2::text[]))
  AND NOT EXISTS (SELECT 1 FROM expiry_owner_flags f WHERE f.entitlement_key = e.key AND f.trigger_id = $3)
ORDER BY e.key LIMIT $4"""  # noqa: S608 - fixed fragments only


async def held_by(
    conn: asyncpg.Connection, principals: Sequence[str], names: Sequence[str], limit: int
) -> list[EntitlementRecord]:
    """The fan-out match of offboarding: revocable entitlements held by any of these principals, or by a
    principal whose id part is one of these bare names (locked, key order, waiting for row locks)."""
    return await repository.lock_by_principal_names(conn, principals, names, REVOCABLE_STATUSES, limit=limit)


async def owned_by(
    conn: asyncpg.Connection, principals: Sequence[str], names: Sequence[str], trigger_id: int, limit: int
) -> list[EntitlementRecord]:
    rows = await conn.fetch(
        _OWNED_BY_SQL + lock_clause(True, skip_locked=False), list(principals), list(names), trigger_id, limit
    )
    return [record_from_row(r) for r in rows]


async def flag_owner(
    conn: asyncpg.Connection, key: str, trigger_id: int, now: datetime, record_version: int | None = None
) -> bool:
    inserted = await conn.fetchval(
        "INSERT INTO expiry_owner_flags (entitlement_key, trigger_id, record_version, flagged_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
        key,
        trigger_id,
        record_version,
        now,
    )
    return inserted is not None


async def in_project(conn: asyncpg.Connection, project: str, limit: int) -> list[EntitlementRecord]:
    """Revocable entitlements tagged with `project` (locked, key order, waiting for row locks)."""
    return await repository.lock_by_project(conn, project, REVOCABLE_STATUSES, limit=limit)
