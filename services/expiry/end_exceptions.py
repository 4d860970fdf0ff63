"""Revoke break-glass access at the end of its window.

If the source has not confirmed the revoke within the SLA, `check_revoke_confirmations` announces
`exception_ended` (the reconciler raises EXCEPTION_EXPIRED) next to `revoke_unconfirmed`.
"""

from __future__ import annotations

from closeloop.record import repository
from expiry.context import ExpiryContext
from expiry.planning import expiry_decision
from expiry.revoking import begin_revoke, sweep_cause


async def end_exceptions(ctx: ExpiryContext) -> tuple[int, int]:
    """One batch (rows locked with SKIP LOCKED). Returns (rows locked, revokes issued)."""
    now = ctx.clock.now()
    issued: list[str] = []
    async with ctx.transaction() as tx:
        records = await repository.lock_exception_window_ended(tx.conn, now, ctx.policy.batch_size)
        for record in records:
            decision = expiry_decision(record, now)
            if decision is None:
                continue
            command = await begin_revoke(
                tx, record, decision, now=now, sla=ctx.policy.revoke_sla, cause=sweep_cause(record, "exception")
            )
            if command is not None:
                issued.append(decision.trigger.value)
    for trigger in issued:
        ctx.metrics.action("revoke_issued", trigger)
    return len(records), len(issued)
