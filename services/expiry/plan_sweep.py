"""What the next sweep would do, without doing it (`closeloop expiry sweep --dry-run`).

Uses the sweep's own candidate queries without locks and the same pure planners, so the plan shows
exactly the decisions a real sweep would take at that instant.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from expiry import store
from expiry.check_revoke_confirmations import belonging_command
from expiry.context import ExpiryPolicy
from expiry.notices import describe_offset, plan_notices
from expiry.planning import confirmation_step, expiry_decision


@dataclass
class PhasePlan:
    phase: str
    actions: Counter[str] = field(default_factory=Counter)
    sample: list[str] = field(default_factory=list)
    truncated: bool = False

    def add(self, action: str, key: str, sample_size: int) -> None:
        self.actions[action] += 1
        if len(self.sample) < sample_size:
            self.sample.append(f"{action}: {key}")


async def plan_sweep(
    conn: asyncpg.Connection, policy: ExpiryPolicy, now: datetime, *, limit: int = 10_000, sample_size: int = 5
) -> list[PhasePlan]:
    plans = []

    revokes = PhasePlan("expire+exceptions")
    due = await store.due_revokes(conn, now, limit)
    revokes.truncated = len(due) >= limit
    for record in due:
        decision = expiry_decision(record, now)
        if decision is not None:
            revokes.add(f"revoke ({decision.trigger.value})", str(record.key), sample_size)
    plans.append(revokes)

    confirmations = PhasePlan("confirmations")
    candidates = await store.confirmation_candidates(conn, now, limit, lock=False)
    confirmations.truncated = len(candidates) >= limit
    for candidate in candidates:
        last = belonging_command(
            await store.last_revoke_command(conn, str(candidate.record.key)), candidate.record, candidate.followup
        )
        step = confirmation_step(
            candidate.record,
            candidate.followup,
            now=now,
            sla=policy.confirmation.window(candidate.record.key, revoke=True),
            schedule=policy.retries,
            attempts_sent=last.attempt if last else 1,
        )
        if step is None:
            continue
        key = str(candidate.record.key)
        if step.raise_unconfirmed:
            confirmations.add("revoke_unconfirmed", key, sample_size)
        if step.raise_exception_ended:
            confirmations.add("exception_ended", key, sample_size)
        if step.resend_attempt is not None:
            confirmations.add(f"resend attempt {step.resend_attempt}", key, sample_size)
    plans.append(confirmations)

    notices = PhasePlan("notices")
    records = await store.notice_candidates(conn, now, policy.notice_offsets, limit, lock=False)
    notices.truncated = len(records) >= limit
    handled = await store.handled_notices(conn, records)
    for record in records:
        if record.expires_at is None:
            continue
        plan = plan_notices(
            record.expires_at,
            policy.notice_offsets,
            handled.get(str(record.key), set()),
            now,
            since=record.granted_at or record.created_at,
        )
        if plan.send is not None:
            notices.add(f"notice {describe_offset(plan.send)}", str(record.key), sample_size)
    plans.append(notices)

    recert = PhasePlan("recertification")
    due_recerts = await store.recert_candidates(conn, now, policy.recert, limit, lock=False)
    recert.truncated = len(due_recerts) >= limit
    for record, due_at in due_recerts:
        handled_stages = await store.handled_stages(conn, str(record.key), due_at)
        stage, _ = policy.recert.stage_to_announce(due_at, now, handled_stages)
        if stage is not None:
            recert.add(f"recertification {stage.value}", str(record.key), sample_size)
    plans.append(recert)

    triggers = PhasePlan("open triggers")
    for trigger in await store.open_triggers(conn, limit):
        triggers.add(trigger.kind, trigger.subject, sample_size)
    plans.append(triggers)
    return plans
