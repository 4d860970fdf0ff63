"""Start a revoke: the record moves to `revoking` with its confirmation deadline, and the command goes out.

Both happen in the caller's record transaction (row, event, command and audit rows commit together),
so a revoke is never announced without its command or sent without being recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementStatus, TicketRef
from closeloop.record import Cause, EntitlementRecord, RecordTransaction, derived_id
from expiry.planning import REVOCABLE, RevokeDecision


def sweep_cause(record: EntitlementRecord, step: str) -> Cause:
    """A deterministic correlation id for a change no input event caused (a sweep step on one version)."""
    return Cause(correlation_id=derived_id("expiry", step, str(record.key), str(record.version)))


async def begin_revoke(
    tx: RecordTransaction,
    record: EntitlementRecord,
    decision: RevokeDecision,
    *,
    now: datetime,
    sla: timedelta,
    cause: Cause,
    ticket: TicketRef | None = None,
) -> ProvisioningCommand | None:
    """Revoke `record` (locked by the caller) unless it is not revocable any more; return the command."""
    if record.status not in REVOCABLE:
        return None
    # A revoke counts as confirmed once the record is verified at or after its request time, so the
    # request must fall strictly after the last verification (equal clocks, or a verifier's clock
    # running ahead of ours, would otherwise make a fresh revoke look confirmed already).
    requested_at = now
    if record.verified_at is not None and record.verified_at >= now:
        requested_at = record.verified_at + timedelta(microseconds=1)
    confirm_by = requested_at + sla
    after = record.evolve(
        status=EntitlementStatus.REVOKING,
        revoke_requested_at=requested_at,
        revoke_confirm_by=confirm_by,
        tickets=record.with_ticket(ticket) if ticket else record.tickets,
    )
    stored = await tx.apply(record, after, change=decision.change, cause=cause, reason=decision.reason)
    command = stored.command(
        CommandAction.REVOKE,
        decision.trigger,
        cause=cause,
        actor=tx.actor,
        confirm_by=confirm_by,
        ticket=ticket or record.approving_ticket,
    )
    await tx.issue(command, cause=cause)
    return command
