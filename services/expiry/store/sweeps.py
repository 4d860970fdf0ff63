"""Sweep candidates and their bookkeeping: revokes due, expiry notices, recertification stages, next wake-up."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import asyncpg

from closeloop.record import EntitlementRecord
from closeloop.record.repository import record_from_row
from expiry.recertification import RecertPolicy, RecertStage
from expiry.store.common import E_COLUMNS, REVOCABLE_SQL, as_seconds, lock_clause

# -- expiry and break-glass window end (read-only twins of the record library's sweep locks) -----------------

_DUE_REVOKE_SQL = f"""
SELECT {E_COLUMNS} FROM entitlements e
WHERE {REVOCABLE_SQL} AND (e.expires_at <= $1 OR e.exception_window_end <= $1)
ORDER BY least(e.expires_at, e.exception_window_end), e.key LIMIT $2"""  # noqa: S608 - fixed fragments only


async def due_revokes(conn: asyncpg.Connection, now: datetime, limit: int) -> list[EntitlementRecord]:
    """Revocable entitlements past their expiry or break-glass window end (no lock; for planning)."""
    return [record_from_row(r) for r in await conn.fetch(_DUE_REVOKE_SQL, now, limit)]


# -- expiry notices ----------------------------------------------------------------------------------------

_NOTICE_SQL = f"""
SELECT {E_COLUMNS} FROM entitlements e
WHERE {REVOCABLE_SQL} AND e.expires_at > $1 AND e.expires_at <= $1 + make_interval(secs => $2)
  AND EXISTS (
    SELECT 1 FROM unnest($3::bigint[]) AS o(s)
    WHERE e.expires_at <= $1 + make_interval(secs => o.s)
      AND NOT EXISTS (SELECT 1 FROM expiry_notices n
                      WHERE n.entitlement_key = e.key AND n.expires_at = e.expires_at AND n.offset_s = o.s))
ORDER BY e.expires_at, e.key LIMIT $4"""  # noqa: S608 - fixed fragments only


async def notice_candidates(
    conn: asyncpg.Connection, now: datetime, offsets: Sequence[timedelta], limit: int, *, lock: bool = True
) -> list[EntitlementRecord]:
    """Live entitlements with at least one notice offset reached and not yet handled for their expiry date."""
    if not offsets:
        return []
    seconds = [as_seconds(o) for o in offsets]
    rows = await conn.fetch(_NOTICE_SQL + lock_clause(lock), now, float(max(seconds)), seconds, limit)
    return [record_from_row(r) for r in rows]


async def handled_notices(conn: asyncpg.Connection, records: Iterable[EntitlementRecord]) -> dict[str, set[timedelta]]:
    pairs = [(str(r.key), r.expires_at) for r in records if r.expires_at is not None]
    if not pairs:
        return {}
    rows = await conn.fetch(
        "SELECT n.entitlement_key, n.offset_s FROM expiry_notices n"
        " JOIN unnest($1::text[], $2::timestamptz[]) AS w(key, expires_at)"
        " ON n.entitlement_key = w.key AND n.expires_at = w.expires_at",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    handled: dict[str, set[timedelta]] = {}
    for row in rows:
        handled.setdefault(row["entitlement_key"], set()).add(timedelta(seconds=row["offset_s"]))
    return handled


async def mark_notice(
    conn: asyncpg.Connection,
    key: str,
    expires_at: datetime,
    offset: timedelta,
    *,
    outcome: str,
    now: datetime,
    record_version: int | None = None,
) -> bool:
    """Record a notice as handled; False if it already was (another worker, a repeat)."""
    inserted = await conn.fetchval(
        "INSERT INTO expiry_notices (entitlement_key, expires_at, offset_s, outcome, record_version, handled_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1",
        key,
        expires_at,
        as_seconds(offset),
        outcome,
        record_version,
        now,
    )
    return inserted is not None


# -- recertification ---------------------------------------------------------------------------------------

_DUE_SQL = (
    "coalesce(e.recertification_due_at, coalesce(e.last_recertified_at, e.granted_at)"
    " + coalesce(e.recertification_interval,"
    " CASE WHEN e.principal_kind IN ('human', 'unknown') THEN $2::interval ELSE $3::interval END))"
)
_STAGE_SQL = (
    "CASE WHEN $6::interval IS NOT NULL AND $1 >= d.due + $6::interval THEN 'revoke'"
    " WHEN $1 >= d.due + $5::interval THEN 'overdue' ELSE 'due' END"
)
_RECERT_SQL = f"""
SELECT {E_COLUMNS}, d.due AS due FROM entitlements e
CROSS JOIN LATERAL (SELECT {_DUE_SQL} AS due) d
WHERE e.status = 'active' AND d.due IS NOT NULL AND d.due - $4::interval <= $1
  AND NOT EXISTS (SELECT 1 FROM expiry_recert_stages s
                  WHERE s.entitlement_key = e.key AND s.due_at = d.due AND s.stage = {_STAGE_SQL})
ORDER BY d.due, e.key LIMIT $7"""  # noqa: S608 - fixed fragments only


async def recert_candidates(
    conn: asyncpg.Connection, now: datetime, policy: RecertPolicy, limit: int, *, lock: bool = True
) -> list[tuple[EntitlementRecord, datetime]]:
    """Active entitlements whose latest reached recertification stage was not handled yet, with the due date."""
    rows = await conn.fetch(
        _RECERT_SQL + lock_clause(lock),
        now,
        policy.interval_human,
        policy.interval_nhi,
        policy.due_lead,
        policy.overdue_grace,
        policy.revoke_after,
        limit,
    )
    return [(record_from_row(r), r["due"]) for r in rows]


async def handled_stages(conn: asyncpg.Connection, key: str, due_at: datetime) -> set[RecertStage]:
    rows = await conn.fetch(
        "SELECT stage FROM expiry_recert_stages WHERE entitlement_key = $1 AND due_at = $2", key, due_at
    )
    return {RecertStage(r["stage"]) for r in rows}


async def mark_stage(
    conn: asyncpg.Connection,
    key: str,
    due_at: datetime,
    stage: RecertStage,
    *,
    outcome: str,
    now: datetime,
    record_version: int | None = None,
) -> bool:
    inserted = await conn.fetchval(
        "INSERT INTO expiry_recert_stages (entitlement_key, due_at, stage, outcome, record_version, handled_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1",
        key,
        due_at,
        stage.value,
        outcome,
        record_version,
        now,
    )
    return inserted is not None


async def next_expiry(conn: asyncpg.Connection, now: datetime) -> datetime | None:
    """The next instant an expiry or break-glass window end falls due (lets the sweeper wake just in time)."""
    value: datetime | None = await conn.fetchval(
        "SELECT least("
        " (SELECT min(expires_at) FROM entitlements WHERE status IN ('pending', 'active') AND expires_at > $1),"
        " (SELECT min(exception_window_end) FROM entitlements"
        "  WHERE status IN ('pending', 'active') AND exception_window_end > $1))",
        now,
    )
    return value
