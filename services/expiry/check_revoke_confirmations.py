"""Revokes the source did not confirm in time: REVOKE_UNCONFIRMED once, then resends with backoff.

A revoke is confirmed when provisioning records the matching grant-revoke event (status revoked,
verified after the request). Past the deadline, the record announces `revoke_unconfirmed` (and
`exception_ended` for a break-glass revoke) and the last revoke command is sent again with the same
command id and the next attempt number, on the backoff schedule, until confirmed or out of attempts.
The command is found in the audit log, so revokes provisioning issued are followed up the same way.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementChange, RevocationTrigger
from closeloop.record import Cause, EntitlementRecord, RecordTransaction, derived_id
from expiry import store
from expiry.context import ACTOR, ExpiryContext
from expiry.planning import FollowUp, confirmation_step, is_exception_revoke

UNKNOWN_COMMAND = "unknown"


def resend(last: ProvisioningCommand, *, attempt: int, now: datetime, confirm_by: datetime) -> ProvisioningCommand:
    """The same command (same command_id) as attempt `attempt`, with a fresh deadline and event id."""
    return last.model_copy(
        update={
            "event_id": derived_id("command-event", last.command_id, str(attempt)),
            "occurred_at": now,
            "source": f"closeloop/{ACTOR}",
            "confirm_by": confirm_by,
            "attempt": attempt,
        }
    )


async def check_revoke_confirmations(ctx: ExpiryContext) -> tuple[int, int]:
    """One batch (rows locked with SKIP LOCKED). Returns (rows locked, actions taken)."""
    now = ctx.clock.now()
    acted: list[tuple[str, str]] = []
    async with ctx.transaction() as tx:
        candidates = await store.confirmation_candidates(tx.conn, now, ctx.policy.batch_size)
        for candidate in candidates:
            acted += await _follow_up(ctx, tx, candidate, now)
    for action, trigger in acted:
        if action == "given_up":
            ctx.metrics.revokes_given_up.labels(ctx.metrics.service).inc()
        else:
            ctx.metrics.action(action, trigger)
    return len(candidates), len(acted)


async def _follow_up(
    ctx: ExpiryContext, tx: RecordTransaction, candidate: store.ConfirmationCandidate, now: datetime
) -> list[tuple[str, str]]:
    record = candidate.record
    key, episode = str(record.key), candidate.episode
    last = belonging_command(await store.last_revoke_command(tx.conn, key), record, candidate.followup)
    window = ctx.policy.confirmation.window(record.key, revoke=True)
    step = confirmation_step(
        record,
        candidate.followup,
        now=now,
        sla=window,
        schedule=ctx.policy.retries,
        attempts_sent=last.attempt if last else 1,
    )
    if step is None or step.empty:
        return []
    trigger = _trigger_of(record, last)
    cause = Cause(
        correlation_id=last.correlation_id if last else derived_id("expiry", "revoke", key, episode.isoformat())
    )
    acted: list[tuple[str, str]] = []
    if step.raise_unconfirmed:
        opened = await store.open_followup(
            tx.conn,
            key,
            episode,
            command_id=last.command_id if last else UNKNOWN_COMMAND,
            trigger=trigger,
            attempts=last.attempt if last else 1,
            now=now,
            next_attempt_at=step.next_attempt_at if last else None,
        )
        if not opened:
            return []  # another worker handled this miss
        deadline = record.revoke_confirm_by.isoformat() if record.revoke_confirm_by else "?"
        record = await tx.apply(
            record,
            record,
            change=EntitlementChange.REVOKE_UNCONFIRMED,
            cause=cause,
            reason=f"revoke ({trigger}) not confirmed by the source by {deadline}",
        )
        acted.append(("revoke_unconfirmed", trigger))
        if last is not None and step.next_attempt_at is None:
            acted.append(("given_up", trigger))
    if step.raise_exception_ended and await store.mark_exception_ended(tx.conn, key, episode, now):
        await _announce_exception_ended(tx, record, cause)
        acted.append(("exception_ended", trigger))
    if step.resend_attempt is not None:
        if last is None:
            await store.stop_followup(tx.conn, key, episode)
            return acted
        counted = await store.record_resend(
            tx.conn, key, episode, attempt=step.resend_attempt, now=now, next_attempt_at=step.next_attempt_at
        )
        if counted:
            command = resend(last, attempt=step.resend_attempt, now=now, confirm_by=now + window)
            await tx.issue(command, cause=cause)
            acted.append(("revoke_resent", trigger))
            if step.next_attempt_at is None:
                acted.append(("given_up", trigger))
    return acted


async def _announce_exception_ended(tx: RecordTransaction, record: EntitlementRecord, cause: Cause) -> None:
    window_end = record.exception_window_end.isoformat() if record.exception_window_end else "?"
    await tx.apply(
        record,
        record,
        change=EntitlementChange.EXCEPTION_ENDED,
        cause=cause,
        reason=f"break-glass window ended at {window_end} and the access is still live past the revoke SLA",
    )


def belonging_command(
    last: ProvisioningCommand | None, record: EntitlementRecord, followup: FollowUp | None
) -> ProvisioningCommand | None:
    """The last revoke command, if it belongs to the revoke in flight (not to an earlier one).

    The first command of a revoke carries the record's deadline; resends carry the command id the
    follow-up remembers.
    """
    if last is None:
        return None
    if followup is not None and followup.command_id not in (None, UNKNOWN_COMMAND):
        return last if last.command_id == followup.command_id else None
    return last if last.confirm_by == record.revoke_confirm_by else None


def _trigger_of(record: EntitlementRecord, last: ProvisioningCommand | None) -> str:
    if last is not None and isinstance(last.reason, RevocationTrigger):
        return last.reason.value
    if is_exception_revoke(record):
        return RevocationTrigger.EXCEPTION_WINDOW_END.value
    return last.reason if last is not None else "unknown"
