"""Project or integration end: everything tagged with the project is revoked."""

from __future__ import annotations

from closeloop.contracts.entitlements import RevocationTrigger
from closeloop.record import RecordTransaction
from expiry import store
from expiry.context import ExpiryContext
from expiry.trigger_revocation import record_once, revoke_in_batches
from expiry.triggers import EndProject

KIND = "project_end"


async def record_project_end(ctx: ExpiryContext, trigger: EndProject) -> store.StoredTrigger | None:
    """Store the trigger (None when this input event was already applied)."""

    async def store_trigger(tx: RecordTransaction) -> store.StoredTrigger:
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

    return await record_once(ctx, trigger.source_event_id, store_trigger)


async def revoke_project_entitlements(ctx: ExpiryContext, trigger: store.StoredTrigger) -> int:
    project = trigger.project
    if project is None:
        return 0
    return await revoke_in_batches(
        ctx,
        trigger,
        RevocationTrigger.PROJECT_END,
        f"project {project} ended",
        lambda conn, limit: store.in_project(conn, project, limit),
    )
