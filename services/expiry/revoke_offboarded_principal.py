"""Offboarding: a principal deactivated at its source, or an offboarding ticket, revokes everything it holds.

The trigger is stored first (once per input event, with every name the identity goes by), then applied
in batches; the sweep finishes any trigger a crash interrupted. The NHIs the person owned are flagged
for reassignment by `flag_orphaned_nhis`.
"""

from __future__ import annotations

from closeloop.contracts.entitlements import RevocationTrigger
from closeloop.record import RecordTransaction
from expiry import store
from expiry.context import ExpiryContext
from expiry.trigger_revocation import record_once, revoke_in_batches
from expiry.triggers import OffboardPrincipal, PrincipalMatch

KIND = "offboarding"


async def record_offboarding(ctx: ExpiryContext, trigger: OffboardPrincipal) -> store.StoredTrigger | None:
    """Store the trigger (None when this input event was already applied)."""

    async def store_trigger(tx: RecordTransaction) -> store.StoredTrigger:
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

    return await record_once(ctx, trigger.source_event_id, store_trigger)


async def revoke_held_entitlements(ctx: ExpiryContext, trigger: store.StoredTrigger) -> int:
    """Revoke, batch by batch, every revocable entitlement the offboarded identity holds."""
    return await revoke_in_batches(
        ctx,
        trigger,
        RevocationTrigger.OFFBOARDING,
        f"principal {trigger.subject} offboarded",
        lambda conn, limit: store.held_by(conn, trigger.principals, trigger.names, limit),
    )
