"""Evidence for auditors: what was held at a given time, under which ticket, owned by whom, until when,
with the recertification decisions made by then.

Built from the audit log (each row holds the whole record after a change), so the answer for a past
date is what the record said then, not what it says now, and every line points at the audit row
(`audit_seq`, `audit_hash`) that proves it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from closeloop.contracts.entitlements import EntitlementStatus
from closeloop.record import HELD_STATUSES, verify_chain

COLUMNS = (
    "entitlement_key",
    "principal",
    "principal_kind",
    "resource",
    "privilege",
    "source_system",
    "status",
    "owner",
    "approving_ticket",
    "tickets",
    "granted_at",
    "expires_at",
    "revocation_triggers",
    "project",
    "last_recertified_at",
    "recertification_decision",
    "recertification_reviewer",
    "recertification_ticket",
    "recertification_decided_at",
    "audit_seq",
    "audit_hash",
)


async def holdings_at(
    conn: asyncpg.Connection, at: datetime, *, statuses: tuple[EntitlementStatus, ...] = HELD_STATUSES
) -> list[dict[str, Any]]:
    """One row per entitlement whose last recorded state at `at` is in `statuses` (default: held)."""
    rows = await conn.fetch(
        """
        WITH latest AS (
            SELECT DISTINCT ON (entity_key) entity_key, seq, hash, payload
            FROM audit_log
            WHERE entity_type = 'entitlement' AND recorded_at <= $1
            ORDER BY entity_key, seq DESC
        )
        SELECT l.entity_key, l.seq, l.hash, l.payload,
               r.decision, r.reviewer, r.ticket AS recert_ticket, r.decided_at
        FROM latest l
        LEFT JOIN LATERAL (
            SELECT decision, reviewer, ticket, decided_at FROM recertifications
            WHERE entitlement_key = l.entity_key AND decided_at <= $1
            ORDER BY decided_at DESC, id DESC LIMIT 1
        ) r ON TRUE
        WHERE l.payload->'record'->>'status' = ANY($2::text[])
        ORDER BY l.entity_key
        """,
        at,
        [s.value for s in statuses],
    )
    return [_row(r) for r in rows]


def _row(row: asyncpg.Record) -> dict[str, Any]:
    payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
    record = payload["record"]
    tickets = record.get("tickets") or []
    approving = next((t for t in reversed(tickets) if t.get("kind") in ("access_request", "exception")), None)
    recert_ticket = json.loads(row["recert_ticket"]) if isinstance(row["recert_ticket"], str) else row["recert_ticket"]
    key = record["key"]
    return {
        "entitlement_key": row["entity_key"],
        "principal": key["principal"],
        "principal_kind": record.get("principal_kind"),
        "resource": key["resource"],
        "privilege": key["privilege"],
        "source_system": record.get("source_system"),
        "status": record.get("status"),
        "owner": record.get("owner"),
        "approving_ticket": approving["ticket_number"] if approving else None,
        "tickets": [f"{t['system']}:{t['ticket_number']}" for t in tickets],
        "granted_at": record.get("granted_at"),
        "expires_at": record.get("expires_at"),
        "revocation_triggers": record.get("revocation_triggers") or [],
        "project": record.get("project"),
        "last_recertified_at": record.get("last_recertified_at"),
        "recertification_decision": row["decision"],
        "recertification_reviewer": row["reviewer"],
        "recertification_ticket": recert_ticket["ticket_number"] if recert_ticket else None,
        "recertification_decided_at": row["decided_at"].isoformat() if row["decided_at"] else None,
        "audit_seq": row["seq"],
        "audit_hash": row["hash"],
    }


async def export_evidence(conn: asyncpg.Connection, at: datetime, *, all_statuses: bool = False) -> dict[str, Any]:
    """The evidence document: the chain check at export time and the holdings at `at`."""
    statuses = tuple(EntitlementStatus) if all_statuses else HELD_STATUSES
    chain = await verify_chain(conn)
    return {
        "as_of": at.isoformat(),
        "statuses": [s.value for s in statuses],
        "audit_chain": chain.as_dict(),
        "entitlements": await holdings_at(conn, at, statuses=statuses),
    }


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)
