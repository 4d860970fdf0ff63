"""What every expiry query shares: the record's columns, the revocable filter, and row locking.

Candidate queries lock the entitlement rows they return (`FOR UPDATE OF e`); sweep phases add
`SKIP LOCKED` so concurrent workers take disjoint batches. With `lock=False` the same queries serve the
dry-run planner. Entitlement rows are only ever *changed* through closeloop.record.
"""

from __future__ import annotations

from datetime import timedelta

from closeloop.record.repository import ENTITLEMENT_COLUMNS

E_COLUMNS = ", ".join(f"e.{column.strip()}" for column in ENTITLEMENT_COLUMNS.split(","))
REVOCABLE_SQL = "e.status IN ('pending', 'active')"
# The id part of a canonical `<system>:<type>:<id>` reference (ids may contain colons themselves).
ID_PART_SQL = "lower(substring({column} from '^[^:]*:[^:]*:(.*)$'))"


def lock_clause(lock: bool, skip_locked: bool = True) -> str:
    if not lock:
        return ""
    return " FOR UPDATE OF e SKIP LOCKED" if skip_locked else " FOR UPDATE OF e"


def as_seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())
