"""One sweep batch of revokes that fell due; the TTL and break-glass phases differ only in which rows they lock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg

from closeloop.record import EntitlementRecord
from expiry.context import ExpiryContext
from expiry.planning import expiry_decision, sweep_cause

LockDue = Callable[[asyncpg.Connection, datetime, int], Awaitable[list[EntitlementRecord]]]
"""Locks (SKIP LOCKED) up to `limit` records that fell due at `now`."""


async def revoke_due(ctx: ExpiryContext, lock_due: LockDue, step: str) -> tuple[int, int]:
    """One batch (rows locked with SKIP LOCKED). Returns (rows locked, revokes issued).

    `step` names the phase in each revoke's derived correlation id, so the phases never share one.
    """
    now = ctx.clock.now()
    async with ctx.transaction() as tx:
        records = await lock_due(tx.conn, now, ctx.policy.batch_size)
        due = [(r, d, sweep_cause(r, step)) for r in records if (d := expiry_decision(r, now)) is not None]
        commands = await ctx.revoke_many(tx, due)
        issued = [d.trigger.value for (_, d, _), command in zip(due, commands, strict=True) if command is not None]
    # Counted after commit, so a rolled-back batch never shows up as issued revokes.
    for trigger in issued:
        ctx.metrics.action("revoke_issued", trigger)
    return len(records), len(issued)
