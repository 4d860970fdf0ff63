"""SQL of the expiry service: candidate selection for each sweep phase, and expiry's own bookkeeping.

Candidate queries lock the entitlement rows they return (`FOR UPDATE OF e`); sweep phases add
`SKIP LOCKED` so concurrent workers take disjoint batches. With `lock=False` the same queries serve the
dry-run planner. Entitlement rows are only ever *changed* through closeloop.record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.entitlements import TicketRef
from closeloop.record import EntitlementRecord, repository
from closeloop.record.repository import ENTITLEMENT_COLUMNS, record_from_row
from expiry.planning import FollowUp
from expiry.recertification import RecertPolicy, RecertStage

E_COLUMNS = ", ".join(f"e.{column.strip()}" for column in ENTITLEMENT_COLUMNS.split(","))
REVOCABLE_SQL = "e.status IN ('pending', 'active')"
# The id part of a canonical `<system>:<type>:<id>` reference (ids may contain colons themselves).
ID_PART_SQL = "lower(substring({column} from '^[^:]*:[^:]*:(.*)$'))"


def _lock(lock: bool, skip_locked: bool = True) -> str:
    if not lock:
        return ""
    return " FOR UPDATE OF e SKIP LOCKED" if skip_locked else " FOR UPDATE OF e"


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


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
    seconds = [_seconds(o) for o in offsets]
    rows = await conn.fetch(_NOTICE_SQL + _lock(lock), now, float(max(seconds)), seconds, limit)
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
        _seconds(offset),
        outcome,
        record_version,
        now,
    )
    return inserted is not None


# -- revoke confirmations ----------------------------------------------------------------------------------

# A revoke is identified by its request time; a record revoked without one falls back to its deadline.
_EPISODE = "coalesce(e.revoke_requested_at, e.revoke_confirm_by)"
_CONFIRMATION_SQL = f"""
SELECT {E_COLUMNS}, f.attempts AS f_attempts, f.unconfirmed_at AS f_unconfirmed_at,
       f.next_attempt_at AS f_next_attempt_at, f.exception_ended_at AS f_exception_ended_at,
       f.command_id AS f_command_id
FROM entitlements e
LEFT JOIN expiry_revoke_followups f ON f.entitlement_key = e.key AND f.revoke_requested_at = {_EPISODE}
WHERE e.status IN ('revoking', 'expired') AND e.revoke_confirm_by <= $1
  AND (e.verified_at IS NULL OR e.verified_at < e.revoke_requested_at)
  AND (f.entitlement_key IS NULL
       OR f.next_attempt_at <= $1
       OR (f.exception_ended_at IS NULL AND e.exception_window_end <= coalesce(e.revoke_requested_at, e.exception_window_end)))
ORDER BY e.revoke_confirm_by, e.key LIMIT $2"""  # noqa: S608 - fixed fragments only


@dataclass(frozen=True)
class ConfirmationCandidate:
    record: EntitlementRecord
    followup: FollowUp | None

    @property
    def episode(self) -> datetime:
        when = self.record.revoke_requested_at or self.record.revoke_confirm_by
        assert when is not None  # noqa: S101 - the query only returns rows with a deadline
        return when


async def confirmation_candidates(
    conn: asyncpg.Connection, now: datetime, limit: int, *, lock: bool = True
) -> list[ConfirmationCandidate]:
    rows = await conn.fetch(_CONFIRMATION_SQL + _lock(lock), now, limit)
    found = []
    for row in rows:
        followup = None
        if row["f_attempts"] is not None:
            followup = FollowUp(
                attempts=row["f_attempts"],
                unconfirmed_at=row["f_unconfirmed_at"],
                next_attempt_at=row["f_next_attempt_at"],
                exception_ended_at=row["f_exception_ended_at"],
                command_id=row["f_command_id"],
            )
        found.append(ConfirmationCandidate(record_from_row(row), followup))
    return found


async def last_revoke_command(conn: asyncpg.Connection, key: str) -> ProvisioningCommand | None:
    """The latest revoke command issued for `key` (from the audit log, whoever issued it)."""
    payload = await conn.fetchval(
        "SELECT payload FROM audit_log WHERE entity_key = $1 AND entity_type = 'command'"
        " AND action = 'revoke_issued' ORDER BY seq DESC LIMIT 1",
        key,
    )
    if payload is None:
        return None
    data = json.loads(payload) if isinstance(payload, str) else payload
    return ProvisioningCommand.model_validate(data)


async def open_followup(
    conn: asyncpg.Connection,
    key: str,
    episode: datetime,
    *,
    command_id: str,
    trigger: str,
    attempts: int,
    now: datetime,
    next_attempt_at: datetime | None,
) -> bool:
    """Start following up an unconfirmed revoke; False if another worker already did."""
    inserted = await conn.fetchval(
        "INSERT INTO expiry_revoke_followups (entitlement_key, revoke_requested_at, command_id, trigger, attempts,"
        " unconfirmed_at, last_attempt_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        key,
        episode,
        command_id,
        trigger,
        attempts,
        now,
        next_attempt_at,
    )
    return inserted is not None


async def record_resend(
    conn: asyncpg.Connection,
    key: str,
    episode: datetime,
    *,
    attempt: int,
    now: datetime,
    next_attempt_at: datetime | None,
) -> bool:
    """Count a resent attempt; False if that attempt was already counted (guards against double sends)."""
    updated = await conn.fetchval(
        "UPDATE expiry_revoke_followups SET attempts = $3, last_attempt_at = $4, next_attempt_at = $5"
        " WHERE entitlement_key = $1 AND revoke_requested_at = $2 AND attempts = $3 - 1 RETURNING 1",
        key,
        episode,
        attempt,
        now,
        next_attempt_at,
    )
    return updated is not None


async def stop_followup(conn: asyncpg.Connection, key: str, episode: datetime) -> None:
    await conn.execute(
        "UPDATE expiry_revoke_followups SET next_attempt_at = NULL WHERE entitlement_key = $1 AND revoke_requested_at = $2",
        key,
        episode,
    )


async def mark_exception_ended(conn: asyncpg.Connection, key: str, episode: datetime, now: datetime) -> bool:
    updated = await conn.fetchval(
        "UPDATE expiry_revoke_followups SET exception_ended_at = $3"
        " WHERE entitlement_key = $1 AND revoke_requested_at = $2 AND exception_ended_at IS NULL RETURNING 1",
        key,
        episode,
        now,
    )
    return updated is not None


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
        _RECERT_SQL + _lock(lock),
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


# -- triggers ----------------------------------------------------------------------------------------------


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


_HELD_BY_SQL = f"""
SELECT {E_COLUMNS} FROM entitlements e
WHERE {REVOCABLE_SQL} AND (e.principal = ANY($1::text[]) OR {ID_PART_SQL.format(column="e.principal")} = ANY($2::text[]))
ORDER BY e.key LIMIT $3"""  # noqa: S608 - fixed fragments only

_OWNED_BY_SQL = f"""
SELECT {E_COLUMNS} FROM entitlements e
WHERE {REVOCABLE_SQL} AND e.owner IS NOT NULL
  AND (e.owner = ANY($1::text[]) OR lower(e.owner) = ANY($2::text[])
       OR {ID_PART_SQL.format(column="e.owner")} = ANY($2::text[]))
  AND NOT EXISTS (SELECT 1 FROM expiry_owner_flags f WHERE f.entitlement_key = e.key AND f.trigger_id = $3)
ORDER BY e.key LIMIT $4"""  # noqa: S608 - fixed fragments only

_IN_PROJECT_SQL = f"""
SELECT {E_COLUMNS} FROM entitlements e
WHERE {REVOCABLE_SQL} AND e.project = $1
ORDER BY e.key LIMIT $2"""  # noqa: S608 - fixed fragments only


async def held_by(
    conn: asyncpg.Connection, principals: Sequence[str], names: Sequence[str], limit: int, *, lock: bool = True
) -> list[EntitlementRecord]:
    """Revocable entitlements held by any of these principals or by principals with these bare names.

    Waits for row locks (no SKIP LOCKED): a trigger must reach every matching row, including one a
    sweep is holding for an unrelated notice. Rows are taken in key order, like every other multi-row
    locker, so lockers cannot deadlock.
    """
    rows = await conn.fetch(_HELD_BY_SQL + _lock(lock, skip_locked=False), list(principals), list(names), limit)
    return [record_from_row(r) for r in rows]


async def owned_by(
    conn: asyncpg.Connection, principals: Sequence[str], names: Sequence[str], trigger_id: int, limit: int
) -> list[EntitlementRecord]:
    rows = await conn.fetch(
        _OWNED_BY_SQL + _lock(True, skip_locked=False), list(principals), list(names), trigger_id, limit
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


async def in_project(
    conn: asyncpg.Connection, project: str, limit: int, *, lock: bool = True
) -> list[EntitlementRecord]:
    rows = await conn.fetch(_IN_PROJECT_SQL + _lock(lock, skip_locked=False), project, limit)
    return [record_from_row(r) for r in rows]


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
