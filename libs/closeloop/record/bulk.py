"""Bulk-load active entitlements with one COPY, for volume tests and benchmarks.

COPY bypasses the record transaction (no audit rows, no outbox): it seeds a database, it does not change
the record of a running system. Run it as the schema owner.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from closeloop.contracts.entitlements import TicketRef
from closeloop.contracts.identity import EntitlementKey, IdentityKind

_COLUMNS = (
    "key", "principal", "resource", "privilege", "source_system", "principal_kind", "tickets",
    "status", "last_change", "granted_at", "expires_at", "verified_at", "version", "created_at", "updated_at",
)  # fmt: skip


async def copy_active_entitlements(
    owner: asyncpg.Connection,
    keys: Sequence[EntitlementKey],
    *,
    expires_at: datetime,
    created_at: datetime,
    kind: IdentityKind = IdentityKind.HUMAN,
    tickets: Sequence[TicketRef] = (),
) -> None:
    """Insert `keys` as active, verified entitlements granted at `created_at` and expiring at `expires_at`."""
    ticket_json = json.dumps([t.model_dump(mode="json") for t in tickets])
    fixed = ("active", "activated", created_at, expires_at, created_at, 2, created_at, created_at)
    await owner.copy_records_to_table(
        "entitlements",
        columns=_COLUMNS,
        records=[
            (str(k), k.principal, k.resource, k.privilege, k.system, kind.value, ticket_json, *fixed) for k in keys
        ],
    )
