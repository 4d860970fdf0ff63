"""The `entitlements` row as SQL: the column list, the versioned insert and update, and their parameters.

The update is guarded by the version (`version = new - 1`), so a write based on a stale read matches no
row and the transaction reports a concurrent modification instead of losing an update.
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
