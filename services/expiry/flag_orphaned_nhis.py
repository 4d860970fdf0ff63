"""Owner departure: entitlements (above all of NHIs) owned by an offboarded person are flagged for
reassignment (`owner_offboarded`; the reconciler raises NO_OWNER). They are not revoked: a service
account keeps running production until someone owns it again, but it must not stay unowned silently.
"""

from __future__ import annotations

from closeloop.contracts.entitlements import EntitlementChange
from closeloop.record import Cause
from expiry import store
from expiry.context import ExpiryContext


async def flag_owned_entitlements(ctx: ExpiryContext, trigger: store.StoredTrigger) -> int:
    """Flag every live entitlement owned by the offboarded identity, once per trigger."""
    cause = Cause(correlation_id=trigger.correlation_id, event_id=trigger.source_event_id)
    total = 0
    while True:
        async with ctx.transaction() as tx:
            records = await store.owned_by(
                tx.conn, trigger.principals, trigger.names, trigger.id, ctx.policy.batch_size
            )
            flagged = 0
            for record in records:
                if not await store.flag_owner(tx.conn, str(record.key), trigger.id, tx.now(), record.version + 1):
                    continue
                kind = "non-human identity" if record.principal_kind.is_nhi else "entitlement"
                await tx.apply(
                    record,
                    record,
                    change=EntitlementChange.OWNER_OFFBOARDED,
                    cause=cause,
                    reason=f"owner {record.owner} offboarded ({trigger.subject}); reassign this {kind}",
                )
                flagged += 1
            await store.count_trigger_progress(tx.conn, trigger.id, flagged=flagged)
        ctx.metrics.action("owner_offboarded", count=flagged)
        total += flagged
        if not records:
            return total
