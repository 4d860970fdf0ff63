"""Which status moves the entitlement record allows, and when a record is next due for recertification."""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.entitlements import EntitlementStatus
from closeloop.record.models import EntitlementRecord

S = EntitlementStatus
# Status moves the record allows (a change that keeps the status is always allowed: recertified,
# owner changed, expiry notice, refused while live, verified again, ...).
ALLOWED_MOVES: dict[EntitlementStatus | None, frozenset[EntitlementStatus]] = {
    None: frozenset({S.PENDING, S.REFUSED}),
    S.PENDING: frozenset({S.ACTIVE, S.REVOKING, S.REVOKED, S.EXPIRED}),
    S.ACTIVE: frozenset({S.REVOKING, S.REVOKED, S.EXPIRED}),
    S.REVOKING: frozenset({S.REVOKED, S.EXPIRED}),
    S.REVOKED: frozenset({S.PENDING, S.REFUSED}),
    S.EXPIRED: frozenset({S.PENDING, S.REFUSED, S.REVOKED}),
    S.REFUSED: frozenset({S.PENDING}),
}


class InvalidTransition(ValueError):
    """A change the record does not allow (a programming error, never bad input)."""


def check_move(before: EntitlementStatus | None, after: EntitlementStatus) -> None:
    if before == after:
        return
    if after not in ALLOWED_MOVES[before]:
        raise InvalidTransition(f"an entitlement cannot move from {before or 'nothing'} to {after}")


def recertification_due(record: EntitlementRecord) -> datetime | None:
    """Next recertification: the last decision (or the grant) plus the interval."""
    if record.recertification_interval is None:
        return None
    base = record.last_recertified_at or record.granted_at
    return base + record.recertification_interval if base else None
