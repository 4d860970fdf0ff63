"""Apply stored revocation triggers to the record, and finish the ones a crash interrupted."""

from __future__ import annotations

from dataclasses import dataclass

from expiry import store
from expiry.context import ExpiryContext
from expiry.end_project import KIND as PROJECT_END
from expiry.end_project import record_project_end, revoke_project_entitlements
from expiry.flag_orphaned_nhis import flag_owned_entitlements
from expiry.revoke_offboarded_principal import KIND as OFFBOARDING
from expiry.revoke_offboarded_principal import record_offboarding, revoke_held_entitlements
from expiry.triggers import EndProject, OffboardPrincipal


@dataclass(frozen=True)
class TriggerResult:
    trigger_id: int | None
    revoked: int = 0
    flagged: int = 0

    @property
    def duplicate(self) -> bool:
        return self.trigger_id is None


async def apply_stored_trigger(ctx: ExpiryContext, trigger: store.StoredTrigger) -> TriggerResult:
    """Revoke (and flag) everything the trigger covers, then mark it complete. Safe to repeat.

    A session advisory lock keeps a second worker (the sweep resuming open triggers) from applying the
    same trigger at the same time; it would be harmless, only wasted work.
    """
    async with ctx.pool.acquire() as lock_conn:
        if not await store.try_lock_trigger(lock_conn, trigger.id):
            return TriggerResult(trigger.id)
        try:
            revoked = flagged = 0
            if trigger.kind == OFFBOARDING:
                revoked = await revoke_held_entitlements(ctx, trigger)
                flagged = await flag_owned_entitlements(ctx, trigger)
            elif trigger.kind == PROJECT_END:
                revoked = await revoke_project_entitlements(ctx, trigger)
            await store.complete_trigger(lock_conn, trigger.id, ctx.clock.now())
        finally:
            await store.unlock_trigger(lock_conn, trigger.id)
    return TriggerResult(trigger.id, revoked, flagged)


async def offboard_principal(ctx: ExpiryContext, trigger: OffboardPrincipal) -> TriggerResult:
    stored = await record_offboarding(ctx, trigger)
    if stored is None:
        return TriggerResult(None)
    return await apply_stored_trigger(ctx, stored)


async def end_project(ctx: ExpiryContext, trigger: EndProject) -> TriggerResult:
    stored = await record_project_end(ctx, trigger)
    if stored is None:
        return TriggerResult(None)
    return await apply_stored_trigger(ctx, stored)


async def resume_open_triggers(ctx: ExpiryContext) -> int:
    """Finish triggers left incomplete (a crash or a stop in the middle); returns how many were finished."""
    async with ctx.pool.acquire() as conn:
        pending = await store.open_triggers(conn)
    for trigger in pending:
        await apply_stored_trigger(ctx, trigger)
    return len(pending)
