"""Project or integration end: everything tagged with the project is revoked."""

from __future__ import annotations

from closeloop.contracts.entitlements import EntitlementChange, RevocationTrigger
from closeloop.record import Cause
from expiry import store
from expiry.context import CONSUMER, ExpiryContext
from expiry.planning import RevokeDecision
from expiry.revoking import begin_revoke
from expiry.triggers import EndProject

KIND = "project_end"


async def record_project_end(ctx: ExpiryContext, trigger: EndProject) -> store.StoredTrigger | None:
    """Store the trigger (None when this input event was already applied)."""
    async with ctx.transaction() as tx:
        if not await tx.claim(CONSUMER, trigger.source_event_id):
            found = await store.trigger_by_source_event(tx.conn, trigger.source_event_id)
            return found if found and not found.completed else None
        return await store.record_trigger(
            tx.conn,
            kind=KIND,
            subject=trigger.project,
            project=trigger.project,
            ticket=trigger.ticket,
            source_event_id=trigger.source_event_id,
            correlation_id=trigger.correlation_id,
            occurred_at=trigger.occurred_at,
            now=tx.now(),
        )


async def revoke_project_entitlements(ctx: ExpiryContext, trigger: store.StoredTrigger) -> int:
    if trigger.project is None:
        return 0
    ticket_note = f" (ticket {trigger.ticket.ticket_number})" if trigger.ticket else ""
    decision = RevokeDecision(
        RevocationTrigger.PROJECT_END,
        EntitlementChange.REVOKE_REQUESTED,
        f"project {trigger.project} ended{ticket_note}",
    )
    cause = Cause(correlation_id=trigger.correlation_id, event_id=trigger.source_event_id)
    total = 0
    while True:
        async with ctx.transaction() as tx:
            records = await store.in_project(tx.conn, trigger.project, ctx.policy.batch_size)
            revoked = 0
            for record in records:
                command = await begin_revoke(
                    tx, record, decision, now=tx.now(), sla=ctx.policy.revoke_sla, cause=cause, ticket=trigger.ticket
                )
                revoked += command is not None
            await store.count_trigger_progress(tx.conn, trigger.id, revoked=revoked)
        ctx.metrics.action("revoke_issued", RevocationTrigger.PROJECT_END.value, revoked)
        total += revoked
        if not records:
            return total
