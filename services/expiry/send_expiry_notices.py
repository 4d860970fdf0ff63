"""Owner notices before expiry (`expiry_notice` record events), each (expiry date, offset) once."""

from __future__ import annotations

from closeloop.contracts.entitlements import EntitlementChange
from expiry import store
from expiry.context import ExpiryContext
from expiry.notices import describe_offset, plan_notices
from expiry.planning import sweep_cause


async def send_expiry_notices(ctx: ExpiryContext) -> tuple[int, int]:
    """One batch (rows locked with SKIP LOCKED). Returns (rows locked, rows handled)."""
    now = ctx.clock.now()
    offsets = ctx.policy.notice_offsets
    sent = handled_rows = 0
    async with ctx.transaction() as tx:
        records = await store.notice_candidates(tx.conn, now, offsets, ctx.policy.batch_size)
        handled = await store.handled_notices(tx.conn, records)
        for record in records:
            expires_at = record.expires_at
            if expires_at is None:
                continue
            key = str(record.key)
            plan = plan_notices(
                expires_at, offsets, handled.get(key, set()), now, since=record.granted_at or record.created_at
            )
            for offset in plan.superseded:
                await store.mark_notice(tx.conn, key, expires_at, offset, outcome="superseded", now=now)
            handled_rows += 1
            if plan.send is None:
                continue
            # The bookkeeping row goes first: if another worker already sent it, nothing is announced.
            if not await store.mark_notice(
                tx.conn, key, expires_at, plan.send, outcome="sent", now=now, record_version=record.version + 1
            ):
                continue
            owner = record.owner or "no owner on record"
            reason = (
                f"expires at {expires_at.isoformat()} ({describe_offset(plan.send)} notice); owner: {owner};"
                " renew through an access request or let it lapse"
            )
            await tx.apply(
                record,
                record,
                change=EntitlementChange.EXPIRY_NOTICE,
                cause=sweep_cause(record, "notice"),
                reason=reason,
            )
            sent += 1
    ctx.metrics.action("expiry_notice", count=sent)
    return len(records), handled_rows
