"""PostgreSQL: the last state seen per ticket, read and written under a per-ticket lock.

`TicketStates.locked()` opens a transaction holding a transaction-scoped advisory lock on the ticket, so
instances deciding about the same ticket take turns (the lock works for tickets not seen yet, where a row
lock could not). The caller publishes while holding it and records only after the broker acknowledged:
a crash in between re-publishes the same deterministic event id on redelivery, which consumers dedupe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from closeloop.contracts.tickets import TicketTransition
from request_intake.observation import TicketObservation
from request_intake.transitions import LastSeen

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
_READ = """
    SELECT phase, vendor_state, version, vendor_updated_at
      FROM intake_ticket_state
     WHERE system = $1 AND ticket_key = $2
"""
_WRITE = """
    INSERT INTO intake_ticket_state
        (system, ticket_key, ticket_number, phase, vendor_state, version, vendor_updated_at, last_event_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (system, ticket_key) DO UPDATE SET
        ticket_number = EXCLUDED.ticket_number,
        phase = EXCLUDED.phase,
        vendor_state = EXCLUDED.vendor_state,
        -- a record without a revision (Jira deletion) keeps the last known one for ordering
        version = COALESCE(EXCLUDED.version, intake_ticket_state.version),
        vendor_updated_at = COALESCE(EXCLUDED.vendor_updated_at, intake_ticket_state.vendor_updated_at),
        last_event_id = COALESCE(EXCLUDED.last_event_id, intake_ticket_state.last_event_id),
        updated_at = now()
"""


@dataclass
class TicketSlot:
    """One ticket, locked for the current transaction; `last` is what was seen before."""

    conn: asyncpg.Connection
    system: str
    ticket_key: str
    last: LastSeen | None

    async def record(self, obs: TicketObservation, event_id: str | None) -> None:
        await self.conn.execute(
            _WRITE,
            self.system,
            self.ticket_key,
            obs.draft.ticket_number,
            obs.phase.value,
            obs.vendor_state,
            obs.version,
            obs.updated_at,
            event_id,
        )


class TicketStates:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def locked(self, system: str, ticket_key: str) -> AsyncIterator[TicketSlot]:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK, f"request-intake|{system}|{ticket_key}")
            row = await conn.fetchrow(_READ, system, ticket_key)
            last = None
            if row is not None:
                last = LastSeen(
                    phase=TicketTransition(row["phase"]),
                    vendor_state=row["vendor_state"],
                    version=row["version"],
                    updated_at=row["vendor_updated_at"],
                )
            yield TicketSlot(conn, system, ticket_key, last)
