"""Recertification deadlines: announce `recertification_due` and `recertification_overdue` once per due
date (the reconciler raises RECERT_OVERDUE on the latter) and, when policy says so, revoke what nobody
recertified in time.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.entitlements import EntitlementChange, RevocationTrigger
from closeloop.record import EntitlementRecord, RecordTransaction
from expiry import store
from expiry.context import ExpiryContext
from expiry.planning import RevokeDecision, sweep_cause
from expiry.recertification import RecertStage

STAGE_CHANGE = {
    RecertStage.DUE: EntitlementChange.RECERTIFICATION_DUE,
    RecertStage.OVERDUE: EntitlementChange.RECERTIFICATION_OVERDUE,
}


async def enforce_recertification(ctx: ExpiryContext) -> tuple[int, int]:
    """One batch (rows locked with SKIP LOCKED). Returns (rows locked, stages announced)."""
    now = ctx.clock.now()
    announced: list[str] = []
    async with ctx.transaction() as tx:
        candidates = await store.recert_candidates(tx.conn, now, ctx.policy.recert, ctx.policy.batch_size)
        for record, due_at in candidates:
            stage = await _advance(ctx, tx, record, due_at, now)
            if stage is not None:
                announced.append(stage.value)
    for name in announced:
        ctx.metrics.action(f"recertification_{name}")
    return len(candidates), len(announced)


async def _advance(
    ctx: ExpiryContext, tx: RecordTransaction, record: EntitlementRecord, due_at: datetime, now: datetime
) -> RecertStage | None:
    policy = ctx.policy.recert
    key = str(record.key)
    handled = await store.handled_stages(tx.conn, key, due_at)
    stage, superseded = policy.stage_to_announce(due_at, now, handled)
    for earlier in superseded:
        await store.mark_stage(tx.conn, key, due_at, earlier, outcome="superseded", now=now)
    if stage is None:
        return None
    if not await store.mark_stage(
        tx.conn, key, due_at, stage, outcome="announced", now=now, record_version=record.version + 1
    ):
        return None
    cause = sweep_cause(record, f"recert-{stage.value}")
    if stage is RecertStage.REVOKE:
        decision = RevokeDecision(
            RevocationTrigger.RECERTIFICATION,
            EntitlementChange.REVOKE_REQUESTED,
            f"not recertified by {due_at.isoformat()}; revoked by recertification policy",
        )
        await ctx.revoke(tx, record, decision, cause=cause)
        return stage
    # Pin the policy interval and due date on the record, so every consumer sees the same deadline.
    interval = policy.interval_for(record.principal_kind, record.recertification_interval)
    after = record.evolve(recertification_interval=interval, recertification_due_at=due_at)
    when = "due" if stage is RecertStage.DUE else "overdue"
    await tx.apply(
        record,
        after,
        change=STAGE_CHANGE[stage],
        cause=cause,
        reason=f"recertification {when}: due {due_at.isoformat()}",
    )
    return stage
