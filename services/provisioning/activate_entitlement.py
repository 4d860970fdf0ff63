"""A grant event: the source says an entitlement is live.

Pending (an approved ticket is waiting for it) -> *active*, verified, still linked to its ticket.
Active -> verified again, at most once per `reverify_after` (snapshots repeat every live grant).
No approved record -> nothing is approved here: the grant is only noted as observed, and the
reconciler raises UNTICKETED_GRANT.
"""

from __future__ import annotations

from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus
from closeloop.contracts.grants import GrantEvent
from closeloop.record import Cause, record_transaction
from provisioning.context import Outcome, Provisioning, Result
from provisioning.observe_grant import observe


async def activate_entitlement(event: GrantEvent, ctx: Provisioning) -> Result:
    cause = Cause(correlation_id=event.correlation_id, event_id=event.event_id)
    async with record_transaction(ctx.pool, actor=ctx.actor, topics=ctx.topics, clock=ctx.clock) as tx:
        if not await tx.claim(ctx.consumer, event.event_id):
            return Result.duplicate()
        if not await observe(tx, event, cause):
            return Result.skipped("older than the latest report from the source")
        record = await tx.lock(event.key)
        if record is None or not record.is_live:
            return Result.skipped("grant without an approved entitlement")
        now = tx.now()
        kind = record.principal_kind if event.principal_kind.value == "unknown" else event.principal_kind
        if record.status is EntitlementStatus.PENDING:
            ticket = record.approving_ticket
            via = f" (command {event.command_id})" if event.command_id else ""
            await tx.apply(
                record,
                record.evolve(
                    status=EntitlementStatus.ACTIVE, granted_at=event.occurred_at, verified_at=now, principal_kind=kind
                ),
                change=EntitlementChange.ACTIVATED,
                reason=f"granted at {event.source_system}{via}" + (f" under {ticket.ticket_number}" if ticket else ""),
                cause=cause,
            )
            return Result(Outcome.APPLIED, events=1)
        if record.status is EntitlementStatus.ACTIVE:
            if record.verified_at is not None and now - record.verified_at < ctx.reverify_after:
                return Result.skipped("verified recently")
            await tx.apply(
                record,
                record.evolve(verified_at=now, principal_kind=kind),
                change=EntitlementChange.VERIFIED,
                reason=f"{event.source_system} reported the grant live again",
                cause=cause,
            )
            return Result(Outcome.APPLIED, events=1)
        # Revoking: a grant report now is either stale or a re-grant; the revoke deadline decides.
        return Result.skipped("grant reported while the revoke is pending")
