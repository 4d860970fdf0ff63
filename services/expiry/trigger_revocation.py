"""What offboarding and project end share: store the trigger once per input event, then revoke in batches.

Each handler supplies only what differs: the fields it stores with the trigger, which records the
trigger reaches, and how the revoke reason names it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from closeloop.contracts.entitlements import EntitlementChange, RevocationTrigger
from closeloop.record import Cause, EntitlementRecord, RecordTransaction
from expiry import store
from expiry.context import CONSUMER, ExpiryContext
from expiry.planning import RevokeDecision

StoreTrigger = Callable[[RecordTransaction], Awaitable[store.StoredTrigger]]
"""Stores the trigger in the claiming transaction (so the claim and the trigger commit together)."""

NextBatch = Callable[[asyncpg.Connection, int], Awaitable[list[EntitlementRecord]]]
"""Locks up to `limit` records the trigger still has to revoke (empty once it reached them all)."""


async def record_once(
    ctx: ExpiryContext, source_event_id: str, store_trigger: StoreTrigger
) -> store.StoredTrigger | None:
    """Store the trigger (None when this input event was already applied).

    A repeat of an input event whose trigger never completed returns that trigger, so it gets finished.
    """
    async with ctx.transaction() as tx:
        if not await tx.claim(CONSUMER, source_event_id):
            found = await store.trigger_by_source_event(tx.conn, source_event_id)
            return found if found and not found.completed else None
        return await store_trigger(tx)


async def revoke_in_batches(
    ctx: ExpiryContext, trigger: store.StoredTrigger, why: RevocationTrigger, what: str, next_batch: NextBatch
) -> int:
    """Revoke, one transaction per batch, everything `next_batch` yields; returns how many revokes went out."""
    ticket_note = f" (ticket {trigger.ticket.ticket_number})" if trigger.ticket else ""
    decision = RevokeDecision(why, EntitlementChange.REVOKE_REQUESTED, f"{what}{ticket_note}")
    cause = Cause(correlation_id=trigger.correlation_id, event_id=trigger.source_event_id)
    total = 0
    while True:
        async with ctx.transaction() as tx:
            records = await next_batch(tx.conn, ctx.policy.batch_size)
            revoked = 0
            for record in records:
                command = await ctx.revoke(tx, record, decision, cause=cause, ticket=trigger.ticket)
                revoked += command is not None
            # Progress commits with the batch, so the stored counts match what was revoked even after a crash.
            await store.count_trigger_progress(tx.conn, trigger.id, revoked=revoked)
        ctx.metrics.action("revoke_issued", why.value, revoked)
        total += revoked
        if not records:
            return total
