"""Start a revoke: the one way any service moves an entitlement to *revoking* and sends its command.

The record moves to `revoking` with its confirmation deadline (the confirmation policy's window for the
entitlement's executor) and the revoke command goes out, both in the caller's record transaction (row,
event, command and audit rows commit together), so a revoke is never announced without its command or
sent without being recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, RevocationTrigger, TicketRef
from closeloop.record.confirmation import ConfirmationPolicy
from closeloop.record.models import REVOCABLE_STATUSES, Cause, EntitlementRecord
from closeloop.record.transaction import RecordChange, RecordTransaction


@dataclass(frozen=True)
class RevokeRequest:
    """One revoke for `begin_revokes` (the arguments of `begin_revoke`)."""

    record: EntitlementRecord
    trigger: RevocationTrigger
    cause: Cause
    reason: str
    change: EntitlementChange = EntitlementChange.REVOKE_REQUESTED
    ticket: TicketRef | None = None


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
    [command] = await begin_revokes(
        tx, [RevokeRequest(record, trigger, cause, reason, change, ticket)], confirmation=confirmation
    )
    return command


async def begin_revokes(
    tx: RecordTransaction, requests: Sequence[RevokeRequest], *, confirmation: ConfirmationPolicy
) -> list[ProvisioningCommand | None]:
    """`begin_revoke` for a batch of records (locked by the caller, one request each): the records are
    written in one statement. Returns each request's command, None where the record was not revocable."""
    now = tx.now()
    changes: list[RecordChange] = []
    deadlines: list[datetime] = []
    for request in requests:
        record = request.record
        if record.status not in REVOCABLE_STATUSES:
            continue
        # A revoke counts as confirmed once the record is verified at or after its request time, so the
        # request must fall strictly after the last verification (equal clocks, or a verifier's clock
        # running ahead of ours, would otherwise make a fresh revoke look confirmed already).
        requested_at = now
        if record.verified_at is not None and record.verified_at >= now:
            requested_at = record.verified_at + timedelta(microseconds=1)
        confirm_by = requested_at + confirmation.window(record.key, revoke=True)
        # A plain copy: apply_many validates the whole record once when it stamps the new version.
        after = record.model_copy(
            update={
                "status": EntitlementStatus.REVOKING,
                "revoke_requested_at": requested_at,
                "revoke_confirm_by": confirm_by,
                "tickets": record.with_ticket(request.ticket) if request.ticket else record.tickets,
            }
        )
        changes.append(RecordChange(record, after, request.change, request.cause, request.reason))
        deadlines.append(confirm_by)
    stored = iter(zip(await tx.apply_many(changes), deadlines, strict=True))
    commands: list[ProvisioningCommand | None] = []
    for request in requests:
        if request.record.status not in REVOCABLE_STATUSES:
            commands.append(None)
            continue
        record, confirm_by = next(stored)
        command = record.command(
            CommandAction.REVOKE,
            request.trigger,
            cause=request.cause,
            actor=tx.actor,
            confirm_by=confirm_by,
            ticket=request.ticket or request.record.approving_ticket,
        )
        await tx.issue(command, cause=request.cause)
        commands.append(command)
    return commands
