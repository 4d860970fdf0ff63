"""Offboarding: a principal deactivated at its source, or an offboarding ticket, revokes everything it holds.

The trigger is stored first (once per input event, with every name the identity goes by), then applied
in batches; the sweep finishes any trigger a crash interrupted. The NHIs the person owned are flagged
for reassignment by `flag_orphaned_nhis`.
"""

from __future__ import annotations

from closeloop.contracts.entitlements import EntitlementChange, RevocationTrigger
from closeloop.record import Cause
from expiry import store
from expiry.context import CONSUMER, ExpiryContext
from expiry.planning import RevokeDecision
from expiry.revoking import begin_revoke
from expiry.triggers import OffboardPrincipal, PrincipalMatch

KIND = "offboarding"


async def record_offboarding(ctx: ExpiryContext, trigger: OffboardPrincipal) -> store.StoredTrigger | None:
    """Store the trigger (None when this input event was already applied)."""
    async with ctx.transaction() as tx:
        if not await tx.claim(CONSUMER, trigger.source_event_id):
            found = await store.trigger_by_source_event(tx.conn, trigger.source_event_id)
            return found if found and not found.completed else None
        aliases = await store.expand_identities(tx.conn, trigger.who.principals, trigger.who.names)
        who = PrincipalMatch.of(*trigger.who.principals, *trigger.who.names, *aliases)
        return await store.record_trigger(
            tx.conn,
            kind=KIND,
            subject=trigger.subject,
            principals=who.principals,
            names=who.names,
            ticket=trigger.ticket,
            source_event_id=trigger.source_event_id,
            correlation_id=trigger.correlation_id,
            occurred_at=trigger.occurred_at,
            now=tx.now(),
        )


async def revoke_held_entitlements(ctx: ExpiryContext, trigger: store.StoredTrigger) -> int:
    """Revoke, batch by batch, every revocable entitlement the offboarded identity holds."""
    ticket_note = f" (ticket {trigger.ticket.ticket_number})" if trigger.ticket else ""
    decision = RevokeDecision(
        RevocationTrigger.OFFBOARDING,
        EntitlementChange.REVOKE_REQUESTED,
        f"principal {trigger.subject} offboarded{ticket_note}",
    )
    cause = Cause(correlation_id=trigger.correlation_id, event_id=trigger.source_event_id)
    total = 0
    while True:
        async with ctx.transaction() as tx:
            records = await store.held_by(tx.conn, trigger.principals, trigger.names, ctx.policy.batch_size)
            revoked = 0
            for record in records:
                command = await begin_revoke(
                    tx, record, decision, now=tx.now(), sla=ctx.policy.revoke_sla, cause=cause, ticket=trigger.ticket
                )
                revoked += command is not None
            await store.count_trigger_progress(tx.conn, trigger.id, revoked=revoked)
        ctx.metrics.action("revoke_issued", RevocationTrigger.OFFBOARDING.value, revoked)
        total += revoked
        if not records:
            return total
