"""A principal status change at the source (deactivated, suspended, deleted, reactivated): record it on
the identity. Policy refuses new grants to inactive identities; ending their access is the offboarding
ticket's job here and the expiry service's (owner departure) for what they own."""

from __future__ import annotations

from closeloop.contracts.grants import PrincipalStatusChanged
from closeloop.contracts.identity import IdentityKind
from closeloop.record import KEEP, Cause, record_transaction
from provisioning.context import Outcome, Provisioning, Result


async def update_identity(event: PrincipalStatusChanged, ctx: Provisioning) -> Result:
    cause = Cause(correlation_id=event.correlation_id, event_id=event.event_id)
    async with record_transaction(ctx.pool, actor=ctx.actor, topics=ctx.topics, clock=ctx.clock) as tx:
        if not await tx.claim(ctx.consumer, event.event_id):
            return Result.duplicate()
        current = await tx.load_identity(event.principal)
        if (
            current is not None
            and current.status_changed_at is not None
            and current.status_changed_at > event.occurred_at
        ):
            return Result.skipped("older than the identity's last status change")
        await tx.upsert_identity(
            event.principal,
            cause=cause,
            kind=event.principal_kind if event.principal_kind is not IdentityKind.UNKNOWN else KEEP,
            status=event.status,
            status_changed_at=event.occurred_at,
            source_system=event.source_system,
            aliases=[a for a in event.principal_aliases if a != event.principal],
        )
        return Result(Outcome.APPLIED)
