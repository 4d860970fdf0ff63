"""Revoke what reached its TTL: status `revoking` (change `expired`) and a revoke command, per entitlement."""

from __future__ import annotations

from closeloop.record import repository
from expiry.context import ExpiryContext
from expiry.planning import expiry_decision
from expiry.revoking import begin_revoke, sweep_cause


async def expire_entitlements(ctx: ExpiryContext) -> tuple[int, int]:
    """One batch (rows locked with SKIP LOCKED). Returns (rows locked, revokes issued)."""
    now = ctx.clock.now()
    issued: list[str] = []
    async with ctx.transaction() as tx:
        records = await repository.lock_expired(tx.conn, now, ctx.policy.batch_size)
        for record in records:
            decision = expiry_decision(record, now)
            if decision is None:
                continue
            command = await begin_revoke(
                tx, record, decision, now=now, sla=ctx.policy.revoke_sla, cause=sweep_cause(record, "expire")
            )
            if command is not None:
                issued.append(decision.trigger.value)
    for trigger in issued:
        ctx.metrics.action("revoke_issued", trigger)
    return len(records), len(issued)
