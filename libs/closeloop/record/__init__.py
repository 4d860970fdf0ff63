"""The entitlement record: typed access to the PostgreSQL tables provisioning owns.

Shared by every service that changes the record (provisioning, expiry) and read by reconciliation and
the operator CLI. Reads live in `repository`, every write goes through `RecordTransaction` (one
transaction: row + outbox event/commands + processed-event id + hash-chained audit rows),
`begin_revoke` is the one way any service starts a revoke (deadline from the shared `ConfirmationPolicy`),
and `audit.verify_chain` proves the log was not tampered with.
"""

from closeloop.record import audit, repository
from closeloop.record.audit import AuditRow, ChainReport, verify_chain
from closeloop.record.confirmation import ConfirmationPolicy, api_executor_for
from closeloop.record.models import (
    HELD_STATUSES,
    LIVE_STATUSES,
    REVOCABLE_STATUSES,
    Cause,
    EntitlementRecord,
    ExceptionGrant,
    IdentityRecord,
    ObservedGrant,
    RecertificationEvidence,
    RecordTopics,
    derived_id,
)
from closeloop.record.moves import ALLOWED_MOVES, InvalidTransition, check_move, recertification_due
from closeloop.record.revoking import RevokeRequest, begin_revoke, begin_revokes
from closeloop.record.transaction import (
    KEEP,
    ConcurrentModification,
    RecordChange,
    RecordTransaction,
    record_transaction,
)

__all__ = [
    "ALLOWED_MOVES",
    "HELD_STATUSES",
    "KEEP",
    "LIVE_STATUSES",
    "REVOCABLE_STATUSES",
    "AuditRow",
    "Cause",
    "ChainReport",
    "ConcurrentModification",
    "ConfirmationPolicy",
    "EntitlementRecord",
    "ExceptionGrant",
    "IdentityRecord",
    "InvalidTransition",
    "ObservedGrant",
    "RecertificationEvidence",
    "RecordChange",
    "RecordTopics",
    "RecordTransaction",
    "RevokeRequest",
    "api_executor_for",
    "audit",
    "begin_revoke",
    "begin_revokes",
    "check_move",
    "derived_id",
    "recertification_due",
    "record_transaction",
    "repository",
    "verify_chain",
]
