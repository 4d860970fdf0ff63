"""A person attests that they carried out a manual command: who, when, with what evidence.

The attestation becomes a grant event (from `closeloop/manual-attestation`, carrying the command id) on
the grants topic, through the outbox in the same transaction; the record consumes it like any source
report, so the revoke is confirmed (or the grant activated) only now.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from closeloop.contracts.grants import Actor, GrantAction, GrantEvent
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.record import Cause, RecordTopics, derived_id, record_transaction

ATTESTATION_SOURCE = "closeloop/manual-attestation"
ATTESTATION_TYPE = "closeloop.manual_attestation"


class AttestationRefused(Exception):
    """The command is unknown, was carried out by an API executor, or is attested already."""


async def attest_command(
    pool: asyncpg.Pool,
    topics: RecordTopics,
    command_id: str,
    *,
    attested_by: str,
    evidence: str,
    attested_at: datetime,
) -> GrantEvent:
    if not attested_by.strip() or not evidence.strip():
        raise AttestationRefused("an attestation needs who carried it out and the evidence")
    async with record_transaction(pool, actor=f"operator:{attested_by}", topics=topics) as tx:
        row = await tx.conn.fetchrow("SELECT * FROM command_executions WHERE command_id = $1 FOR UPDATE", command_id)
        if row is None:
            raise AttestationRefused(f"no command {command_id} has reached the executors")
        if row["status"] == "attested":
            raise AttestationRefused(f"command {command_id} was attested by {row['attested_by']} already")
        if row["status"] != "awaiting_attestation":
            raise AttestationRefused(f"command {command_id} was carried out by the {row['executor']} executor")
        await tx.conn.execute(
            "UPDATE command_executions SET status = 'attested', attested_by = $2, attested_at = $3, evidence = $4,"
            " updated_at = now() WHERE command_id = $1",
            command_id,
            attested_by,
            attested_at,
            evidence,
        )
        cause = Cause(correlation_id=row["correlation_id"] or derived_id("attestation", command_id))
        key = EntitlementKey.parse(row["entitlement_key"])
        event: GrantEvent = GrantEvent.create(
            event_id=derived_id("attestation", command_id),
            occurred_at=attested_at,
            source=ATTESTATION_SOURCE,
            correlation_id=cause.correlation_id,
            action=GrantAction(row["action"]),
            key=key,
            source_system=row["target_system"],
            actor=Actor(id=attested_by, kind=IdentityKind.HUMAN),
            vendor_event_id=f"attestation:{command_id}",
            vendor_event_type=ATTESTATION_TYPE,
            command_id=command_id,
        )
        tx.enqueue(topics.grants, event)
        tx.audit(
            entity_type="command",
            entity_key=str(key),
            action=f"{row['action']}_attested",
            payload={
                "command_id": command_id,
                "attested_by": attested_by,
                "attested_at": attested_at.isoformat(),
                "evidence": evidence,
                "grant_event_id": event.event_id,
            },
            cause=cause,
        )
    return event


async def awaiting_attestation(pool: asyncpg.Pool, limit: int = 200) -> list[asyncpg.Record]:
    """Manual commands still waiting for a person, oldest first."""
    async with pool.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT command_id, entitlement_key, action, target_system, ticket, confirm_by, created_at"
            " FROM command_executions WHERE status = 'awaiting_attestation' ORDER BY created_at LIMIT $1",
            limit,
        )
    return rows
