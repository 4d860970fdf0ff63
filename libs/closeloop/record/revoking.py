"""Start a revoke: the one way any service moves an entitlement to *revoking* and sends its command.

The record moves to `revoking` with its confirmation deadline (the confirmation policy's window for the
entitlement's executor) and the revoke command goes out, both in the caller's record transaction (row,
event, command and audit rows commit together), so a revoke is never announced without its command or
sent without being recorded.
"""

from __future__ import annotations

from datetime import timedelta

from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, RevocationTrigger, TicketRef
from closeloop.record.confirmation import ConfirmationPolicy
from closeloop.record.models import REVOCABLE_STATUSES, Cause, EntitlementRecord
from closeloop.record.transaction import RecordTransaction


async def begin_revoke(
    tx: RecordTransaction,
    record: EntitlementRecord,
    trigger: RevocationTrigger,
    *,
    confirmation: ConfirmationPolicy,
    cause: Cause,
    reason: str,
    change: EntitlementChange = EntitlementChange.REVOKE_REQUESTED,
    ticket: TicketRef | None = None,
) -> ProvisioningCommand | None:
    """Revoke `record` (locked by the caller); None when it is not revocable (already revoking, ended).

    `ticket` is the ticket that ends the access (kept on the record and the command); without one the
    command names the ticket that approved the access.
    """
    if record.status not in REVOCABLE_STATUSES:
        return None
    now = tx.now()
    # A revoke counts as confirmed once the record is verified at or after its request time, so the
    # request must fall strictly after the last verification (equal clocks, or a verifier's clock
    # running ahead of ours, would otherwise make a fresh revoke look confirmed already).
    requested_at = now
    if record.verified_at is not None and record.verified_at >= now:
        requested_at = record.verified_at + timedelta(microseconds=1)
    confirm_by = requested_at + confirmation.window(record.key, revoke=True)
    stored = await tx.apply(
        record,
        record.evolve(
            status=EntitlementStatus.REVOKING,
            revoke_requested_at=requested_at,
            revoke_confirm_by=confirm_by,
            tickets=record.with_ticket(ticket) if ticket else record.tickets,
        ),
        change=change,
        cause=cause,
        reason=reason,
    )
    command = stored.command(
        CommandAction.REVOKE,
        trigger,
        cause=cause,
        actor=tx.actor,
        confirm_by=confirm_by,
        ticket=ticket or record.approving_ticket,
    )
    await tx.issue(command, cause=cause)
    return command
