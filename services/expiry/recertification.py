"""Recertification policy: when an entitlement is due, and which stage of the cycle it is in.

Due date: the record's own `recertification_due_at` when provisioning set one; otherwise the last
decision (or the grant) plus the record's interval, or the policy default for its identity kind.
Stages are announced once each per due date: `due` (a lead time before), `overdue` (after a grace;
the reconciler raises RECERT_OVERDUE), and optionally `revoke` (the machine revokes what nobody
recertified).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from closeloop.contracts.identity import IdentityKind


class RecertStage(StrEnum):
    DUE = "due"
    OVERDUE = "overdue"
    REVOKE = "revoke"


class Decision(StrEnum):
    CERTIFY = "certify"
    REVOKE = "revoke"


STAGE_ORDER = (RecertStage.DUE, RecertStage.OVERDUE, RecertStage.REVOKE)


@dataclass(frozen=True)
class RecertPolicy:
    interval_human: timedelta | None
    interval_nhi: timedelta | None
    due_lead: timedelta
    overdue_grace: timedelta
    revoke_after: timedelta | None

    def interval_for(self, kind: IdentityKind, own: timedelta | None) -> timedelta | None:
        if own is not None:
            return own
        return self.interval_nhi if kind.is_nhi else self.interval_human

    def due_at(
        self,
        *,
        kind: IdentityKind,
        own_interval: timedelta | None,
        own_due_at: datetime | None,
        last_recertified_at: datetime | None,
        granted_at: datetime | None,
    ) -> datetime | None:
        """The next due date, or None when recertification is not required (or not yet computable)."""
        if own_due_at is not None:
            return own_due_at
        interval = self.interval_for(kind, own_interval)
        base = last_recertified_at or granted_at
        if interval is None or base is None:
            return None
        return base + interval

    def stage_starts(self, due_at: datetime) -> dict[RecertStage, datetime]:
        starts = {RecertStage.DUE: due_at - self.due_lead, RecertStage.OVERDUE: due_at + self.overdue_grace}
        if self.revoke_after is not None:
            starts[RecertStage.REVOKE] = due_at + self.revoke_after
        return starts

    def stages_reached(self, due_at: datetime, now: datetime) -> list[RecertStage]:
        """Every stage whose start has passed, in cycle order."""
        starts = self.stage_starts(due_at)
        return [stage for stage in STAGE_ORDER if stage in starts and now >= starts[stage]]

    def stage_to_announce(
        self, due_at: datetime, now: datetime, announced: set[RecertStage]
    ) -> tuple[RecertStage | None, list[RecertStage]]:
        """The latest reached, not yet announced stage, and the earlier ones it supersedes.

        After downtime `due` and `overdue` may both be reached: only `overdue` is announced (the
        reconciler cares about the latest state), `due` is recorded as handled.
        """
        pending = [s for s in self.stages_reached(due_at, now) if s not in announced]
        if not pending:
            return None, []
        return pending[-1], pending[:-1]

    def earliest_stage_start(self, due_at: datetime) -> datetime:
        return due_at - self.due_lead
