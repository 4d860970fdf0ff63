"""A revoke event: the source says an entitlement is gone.

Revoking -> *revoked*, verified. Expired -> stays *expired*, now verified (the removal is confirmed).
Active -> *revoked*, verified: the source is the authority, even when the removal came from outside
closeloop (the reason says so). Pending entitlements wait for their grant; nothing else changes.
"""

from __future__ import annotations

from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus
from closeloop.contracts.grants import GrantEvent
from closeloop.record import Cause, record_transaction
from provisioning.context import Outcome, Provisioning, Result
from provisioning.observe_grant import observe


async def confirm_revocation(event: GrantEvent, ctx: Provisioning) -> Result:
    cause = Cause(correlation_id=event.correlation_id, event_id=event.event_id)
    async with record_transaction(ctx.pool, actor=ctx.actor, topics=ctx.topics, clock=ctx.clock) as tx:
        if not await tx.claim(ctx.consumer, event.event_id):
            return Result.duplicate()
        if not await observe(tx, event, cause):
            return Result.skipped("older than the latest report from the source")
        record = await tx.lock(event.key)
        if record is None:
            return Result.skipped("revoke of an entitlement the record does not hold")
        now = tx.now()
        via = f" (command {event.command_id})" if event.command_id else ""
        if record.status is EntitlementStatus.REVOKING:
            status, reason = EntitlementStatus.REVOKED, f"revoke confirmed by {event.source_system}{via}"
        elif record.status is EntitlementStatus.EXPIRED and not record.revoke_confirmed():
            status, reason = (
                EntitlementStatus.EXPIRED,
                f"removal of the expired entitlement confirmed by {event.source_system}{via}",
            )
        elif record.status is EntitlementStatus.ACTIVE:
            status, reason = (
                EntitlementStatus.REVOKED,
                f"removed at {event.source_system} without a revoke from closeloop",
            )
        else:
            return Result.skipped(f"nothing to confirm ({record.status.value})")
        await tx.apply(
            record,
            record.evolve(status=status, verified_at=now),
            change=EntitlementChange.REVOKED,
            reason=reason,
            cause=cause,
        )
        return Result(Outcome.APPLIED, events=1)
