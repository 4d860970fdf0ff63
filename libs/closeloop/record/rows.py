"""The `entitlements` row as SQL: the column list, the versioned insert and update, and their parameters.

The update is guarded by the version (`version = new - 1`), so a write based on a stale read matches no
row and the transaction reports a concurrent modification instead of losing an update. `UPDATE_MANY_SQL`
is the same guarded update for a whole batch in one statement (one array per column, `update_many_params`).
"""

from __future__ import annotations

import json
from typing import Any

from closeloop.record.models import EntitlementRecord

UPSERT_COLUMNS = (
    "key, principal, resource, privilege, source_system, principal_kind, owner, tickets, status, last_change, "
    "reason, granted_at, expires_at, revocation_triggers, project, verified_at, last_recertified_at, "
    "recertification_interval, recertification_due_at, exception_window_end, revoke_requested_at, "
    "revoke_confirm_by, version, created_at, updated_at"
)
INSERT_SQL = (
    f"INSERT INTO entitlements ({UPSERT_COLUMNS}) VALUES "  # noqa: S608 - fixed column list
    "($1,$2,$3,$4,$5,$6,$7,$8::jsonb,$9,$10,$11,$12,$13,$14::text[],$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25) "
    "ON CONFLICT (key) DO NOTHING RETURNING version"
)
UPDATE_SQL = (
    "UPDATE entitlements SET source_system=$5, principal_kind=$6, owner=$7, tickets=$8::jsonb, status=$9, "
    "last_change=$10, reason=$11, granted_at=$12, expires_at=$13, revocation_triggers=$14::text[], project=$15, "
    "verified_at=$16, last_recertified_at=$17, recertification_interval=$18, recertification_due_at=$19, "
    "exception_window_end=$20, revoke_requested_at=$21, revoke_confirm_by=$22, version=$23, updated_at=$24 "
    "WHERE key=$1 AND principal=$2 AND resource=$3 AND privilege=$4 AND version=$23 - 1 RETURNING version"
)

# (column, array type) in `row_params` order; the batch update reads one array per column through unnest.
_ARRAY_TYPES = (
    ("key", "text"), ("principal", "text"), ("resource", "text"), ("privilege", "text"),
    ("source_system", "text"), ("principal_kind", "text"), ("owner", "text"), ("tickets", "text"),
    ("status", "text"), ("last_change", "text"), ("reason", "text"), ("granted_at", "timestamptz"),
    ("expires_at", "timestamptz"), ("revocation_triggers", "text"), ("project", "text"),
    ("verified_at", "timestamptz"), ("last_recertified_at", "timestamptz"), ("recertification_interval", "interval"),
    ("recertification_due_at", "timestamptz"), ("exception_window_end", "timestamptz"),
    ("revoke_requested_at", "timestamptz"), ("revoke_confirm_by", "timestamptz"), ("version", "bigint"),
    ("updated_at", "timestamptz"),
)  # fmt: skip
_KEY_COLUMNS = ("key", "principal", "resource", "privilege")
# jsonb and text[] travel as JSON text: unnest would flatten an array of arrays.
_CASTS = {
    "tickets": "u.tickets::jsonb",
    "revocation_triggers": "ARRAY(SELECT jsonb_array_elements_text(u.revocation_triggers::jsonb))",
}
UPDATE_MANY_SQL = (
    "UPDATE entitlements e SET "  # noqa: S608 - fixed column list
    + ", ".join(f"{c}={_CASTS.get(c, 'u.' + c)}" for c, _ in _ARRAY_TYPES if c not in _KEY_COLUMNS)
    + " FROM unnest("
    + ", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(_ARRAY_TYPES, start=1))
    + ") AS u("
    + ", ".join(c for c, _ in _ARRAY_TYPES)
    + ") WHERE "
    + " AND ".join(f"e.{c}=u.{c}" for c in _KEY_COLUMNS)
    + " AND e.version=u.version - 1 RETURNING e.key"
)


def update_many_params(records: list[EntitlementRecord]) -> list[list[Any]]:
    """The array parameters of `UPDATE_MANY_SQL` for stored records (one array per column)."""
    columns: list[list[Any]] = [[] for _ in _ARRAY_TYPES]
    for record in records:
        params = row_params(record)
        for column, value in zip(
            columns, (*params[:13], json.dumps(params[13]), *params[14:23], params[24]), strict=True
        ):
            column.append(value)
    return columns


def row_params(record: EntitlementRecord) -> tuple[Any, ...]:
    """The positional parameters of `INSERT_SQL` for a stored record (`UPDATE_SQL`: all but created_at)."""
    return (
        str(record.key),
        record.key.principal,
        record.key.resource,
        record.key.privilege,
        record.source_system,
        record.principal_kind.value,
        record.owner,
        json.dumps([t.model_dump(mode="json") for t in record.tickets]),
        record.status.value,
        record.last_change.value,
        record.reason,
        record.granted_at,
        record.expires_at,
        [t.value for t in record.revocation_triggers],
        record.project,
        record.verified_at,
        record.last_recertified_at,
        record.recertification_interval,
        record.recertification_due_at,
        record.exception_window_end,
        record.revoke_requested_at,
        record.revoke_confirm_by,
        record.version,
        record.created_at,
        record.updated_at,
    )
