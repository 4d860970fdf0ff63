"""Revokes awaiting confirmation, and the follow-up bookkeeping of the ones that missed their deadline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from closeloop.contracts.commands import ProvisioningCommand
from closeloop.record import EntitlementRecord
from closeloop.record.repository import record_from_row
from expiry.planning import FollowUp
from expiry.store.common import E_COLUMNS, lock_clause

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
    rows = await conn.fetch(_CONFIRMATION_SQL + lock_clause(lock), now, limit)
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
