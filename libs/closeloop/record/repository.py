"""Reading the record: load, lock and list entitlements and identities.

Every function takes an asyncpg connection. `lock_*` functions must run inside a transaction (they
take row locks until it ends); the sweep variants use SKIP LOCKED so several instances of a sweeper
split the due rows between them instead of queueing on each other. Writes go through
`RecordTransaction` (closeloop.record.transaction), never through ad-hoc SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from closeloop.contracts.entitlements import EntitlementStatus, TicketRef
from closeloop.contracts.identity import EntitlementKey
from closeloop.identity.store import linked_accounts, linked_names
from closeloop.record.models import (
    LIVE_STATUSES,
    EntitlementRecord,
    IdentityRecord,
    ObservedGrant,
    RecertificationEvidence,
)

ENTITLEMENT_COLUMNS = (
    "key, principal, resource, privilege, source_system, principal_kind, owner, tickets, status, last_change, "
    "reason, granted_at, expires_at, revocation_triggers, project, verified_at, last_recertified_at, "
    "recertification_interval, recertification_due_at, exception_window_end, revoke_requested_at, "
    "revoke_confirm_by, version, created_at, updated_at"
)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def record_from_row(row: asyncpg.Record) -> EntitlementRecord:
    return EntitlementRecord(
        key=EntitlementKey(principal=row["principal"], resource=row["resource"], privilege=row["privilege"]),
        status=row["status"],
        last_change=row["last_change"],
        reason=row["reason"],
        source_system=row["source_system"],
        principal_kind=row["principal_kind"],
        owner=row["owner"],
        tickets=tuple(TicketRef.model_validate(t) for t in _json(row["tickets"]) or ()),
        granted_at=row["granted_at"],
        expires_at=row["expires_at"],
        revocation_triggers=tuple(row["revocation_triggers"] or ()),
        project=row["project"],
        verified_at=row["verified_at"],
        last_recertified_at=row["last_recertified_at"],
        recertification_interval=row["recertification_interval"],
        recertification_due_at=row["recertification_due_at"],
        exception_window_end=row["exception_window_end"],
        revoke_requested_at=row["revoke_requested_at"],
        revoke_confirm_by=row["revoke_confirm_by"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _key(key: EntitlementKey | str) -> str:
    return str(key)


async def load(conn: asyncpg.Connection, key: EntitlementKey | str) -> EntitlementRecord | None:
    """The record of one entitlement, or None (no lock)."""
    row = await conn.fetchrow(f"SELECT {ENTITLEMENT_COLUMNS} FROM entitlements WHERE key = $1", _key(key))  # noqa: S608 - fixed column list
    return record_from_row(row) if row else None


async def lock(conn: asyncpg.Connection, key: EntitlementKey | str) -> EntitlementRecord | None:
    """Load one entitlement and lock its row until the transaction ends (None if there is no row yet)."""
    row = await conn.fetchrow(
        f"SELECT {ENTITLEMENT_COLUMNS} FROM entitlements WHERE key = $1 FOR UPDATE",  # noqa: S608 - fixed column list
        _key(key),
    )
    return record_from_row(row) if row else None


async def lock_many(conn: asyncpg.Connection, keys: Iterable[EntitlementKey | str]) -> dict[str, EntitlementRecord]:
    """Lock several entitlements in key order (a fixed order avoids deadlocks between lockers)."""
    wanted = sorted({_key(k) for k in keys})
    rows = await conn.fetch(
        f"SELECT {ENTITLEMENT_COLUMNS} FROM entitlements WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE",  # noqa: S608
        wanted,
    )
    return {row["key"]: record_from_row(row) for row in rows}


async def _select(
    conn: asyncpg.Connection,
    where: str,
    args: Sequence[Any],
    *,
    order: str = "key",
    limit: int | None = None,
    offset: int = 0,
    for_update: bool = False,
    skip_locked: bool = False,
) -> list[EntitlementRecord]:
    # `where` and `order` are always fixed fragments from this module; values travel as parameters.
    sql = f"SELECT {ENTITLEMENT_COLUMNS} FROM entitlements WHERE {where} ORDER BY {order}"  # noqa: S608
    params = list(args)
    if limit is not None:
        params.append(limit)
        sql += f" LIMIT ${len(params)}"
    if offset:
        params.append(offset)
        sql += f" OFFSET ${len(params)}"
    if for_update:
        sql += " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"
    return [record_from_row(r) for r in await conn.fetch(sql, *params)]


def _statuses(statuses: Iterable[EntitlementStatus] | None) -> list[str]:
    return [s.value for s in (statuses if statuses is not None else LIVE_STATUSES)]


async def lock_by_principal_names(
    conn: asyncpg.Connection,
    principals: Iterable[str],
    names: Iterable[str] = (),
    statuses: Iterable[EntitlementStatus] | None = None,
    *,
    limit: int | None = None,
) -> list[EntitlementRecord]:
    """Lock every entitlement held by one of `principals` (canonical), or by any principal whose id part
    is one of `names` (case-insensitive: an offboarding ticket naming `alice@example.com` matches
    `okta:user:alice@example.com` and `entra:user:alice@example.com`), in key order.

    Waits for row locks (no SKIP LOCKED): a trigger must reach every matching row, including one a
    sweep is holding for an unrelated notice; key order keeps lockers from deadlocking."""
    return await _select(
        conn,
        "(principal = ANY($1::text[]) OR lower(substring(principal from '^[^:]+:[^:]+:(.*)$')) = ANY($2::text[]))"
        " AND status = ANY($3::text[])",
        [sorted(set(principals)), sorted({n.lower() for n in names}), _statuses(statuses)],
        limit=limit,
        for_update=True,
    )


async def lock_by_project(
    conn: asyncpg.Connection,
    project: str,
    statuses: Iterable[EntitlementStatus] | None = None,
    *,
    limit: int | None = None,
) -> list[EntitlementRecord]:
    """Lock every entitlement tagged with `project` (project end), in key order, waiting for row locks."""
    return await _select(
        conn, "project = $1 AND status = ANY($2::text[])", [project, _statuses(statuses)], limit=limit, for_update=True
    )


async def _lock_due(
    conn: asyncpg.Connection, where: str, due_column: str, now: datetime, limit: int
) -> list[EntitlementRecord]:
    """Rows whose `due_column` has passed, most overdue first; locked, skipping rows another worker holds,
    so several sweepers share the work without doing any of it twice."""
    return await _select(conn, where, [now], order=f"{due_column}, key", limit=limit, for_update=True, skip_locked=True)


async def lock_expired(conn: asyncpg.Connection, now: datetime, limit: int = 500) -> list[EntitlementRecord]:
    """Pending or active entitlements whose expiry has passed (SKIP LOCKED, oldest first)."""
    return await _lock_due(conn, "status IN ('pending', 'active') AND expires_at <= $1", "expires_at", now, limit)


async def lock_exception_window_ended(
    conn: asyncpg.Connection, now: datetime, limit: int = 500
) -> list[EntitlementRecord]:
    """Live exception entitlements whose break-glass window has ended (SKIP LOCKED)."""
    return await _lock_due(
        conn, "status IN ('pending', 'active') AND exception_window_end <= $1", "exception_window_end", now, limit
    )


async def list_entitlements(
    conn: asyncpg.Connection,
    *,
    statuses: Iterable[EntitlementStatus] | None = None,
    principal: str | None = None,
    owner: str | None = None,
    resource: str | None = None,
    ticket_number: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[EntitlementRecord]:
    """Entitlements matching every given filter, by key (no lock). `statuses=None` means all statuses."""
    clauses: list[str] = []
    args: list[Any] = []

    def add(clause: str, value: Any) -> None:
        args.append(value)
        clauses.append(clause.replace("?", f"${len(args)}"))

    if statuses is not None:
        add("status = ANY(?::text[])", [s.value for s in statuses])
    if principal:
        add("principal = ?", principal)
    if owner:
        add("owner = ?", owner)
    if resource:
        add("resource = ?", resource)
    if ticket_number:
        add("tickets @> ?::jsonb", json.dumps([{"ticket_number": ticket_number}]))
    where = " AND ".join(clauses) or "TRUE"
    return await _select(conn, where, args, limit=limit, offset=offset)


def identity_from_row(row: asyncpg.Record, aliases: Sequence[str] = ()) -> IdentityRecord:
    return IdentityRecord(
        principal=row["principal"],
        kind=row["kind"],
        status=row["status"],
        owner=row["owner"],
        display_name=row["display_name"],
        source_system=row["source_system"],
        status_changed_at=row["status_changed_at"],
        aliases=tuple(sorted(aliases)),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def load_identity(conn: asyncpg.Connection, principal: str, *, for_update: bool = False) -> IdentityRecord | None:
    """An identity with its aliases, or None. `for_update` locks the row (inside a transaction)."""
    sql = (
        "SELECT * FROM identities WHERE principal = $1 FOR UPDATE"
        if for_update
        else "SELECT * FROM identities WHERE principal = $1"
    )
    row = await conn.fetchrow(sql, principal)
    if row is None:
        return None
    aliases = await linked_names(conn, [principal])
    return identity_from_row(row, [a for a in aliases if a != principal])


async def resolve_principal(conn: asyncpg.Connection, name: str) -> str | None:
    """The canonical principal behind `name`: itself if it is a known identity, else the one identity of the
    record its name is linked to in the identity graph on the same system (None when none or several)."""
    found = await conn.fetchval("SELECT principal FROM identities WHERE principal = $1", name)
    if found:
        return str(found)
    system = name.split(":", 1)[0] if name.count(":") >= 2 else None
    rows = await conn.fetch(
        "SELECT principal FROM identities WHERE principal = ANY($1::text[]) ORDER BY principal",
        [n for n in await linked_names(conn, [name]) if system is None or n.startswith(f"{system}:")],
    )
    return str(rows[0]["principal"]) if len(rows) == 1 else None


async def recertifications_for(conn: asyncpg.Connection, key: EntitlementKey | str) -> list[RecertificationEvidence]:
    rows = await conn.fetch(
        "SELECT * FROM recertifications WHERE entitlement_key = $1 ORDER BY decided_at, id", _key(key)
    )
    return [
        RecertificationEvidence(
            entitlement_key=r["entitlement_key"],
            decision=r["decision"],
            reviewer=r["reviewer"],
            decided_at=r["decided_at"],
            ticket=TicketRef.model_validate(_json(r["ticket"])) if r["ticket"] else None,
            notes=r["notes"],
        )
        for r in rows
    ]


async def load_observed(conn: asyncpg.Connection, key: EntitlementKey | str) -> ObservedGrant | None:
    """The latest grant state a source reported for `key` (approved or not), if any."""
    row = await conn.fetchrow(
        "SELECT key, live, source_system, observed_at, vendor_event_id, command_id FROM observed_grants WHERE key = $1",
        _key(key),
    )
    return ObservedGrant.model_validate(dict(row)) if row else None


async def principals_for_alias(conn: asyncpg.Connection, names: Iterable[str]) -> list[str]:
    """Every account, in every system, of the identities any of `names` (emails, logins, accounts) belongs to."""
    return await linked_accounts(conn, names)
