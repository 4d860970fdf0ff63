"""A reviewer's recertification decision (from a recertification ticket or the CLI), kept as evidence.

Certify: the evidence row, and the record's next due date moves to decision + interval (`recertified`).
Revoke: the evidence row, and the entitlement is revoked (reason recertification).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from closeloop.contracts.entitlements import EntitlementChange, RevocationTrigger
from closeloop.record import REVOCABLE_STATUSES, Cause, RecertificationEvidence
from expiry.context import CONSUMER, ExpiryContext
from expiry.planning import RevokeDecision
from expiry.recertification import Decision
from expiry.triggers import RecertificationDecision


class DecisionOutcome(StrEnum):
    DUPLICATE = "duplicate"
    UNKNOWN_ENTITLEMENT = "unknown_entitlement"
    EVIDENCE_ONLY = "evidence_only"  # the entitlement is no longer live; the decision is still kept
    CERTIFIED = "certified"
    REVOKED = "revoked"


EVIDENCE_DECISION: dict[Decision, Literal["certified", "revoked"]] = {
    Decision.CERTIFY: "certified",
    Decision.REVOKE: "revoked",
}


async def record_recertification_decision(ctx: ExpiryContext, decision: RecertificationDecision) -> DecisionOutcome:
    cause = Cause(correlation_id=decision.correlation_id, event_id=decision.source_event_id)
    async with ctx.transaction() as tx:
        record = await tx.lock(decision.key)
        if record is None:
            return DecisionOutcome.UNKNOWN_ENTITLEMENT
        if not await tx.claim(CONSUMER, decision.claim_id):
            return DecisionOutcome.DUPLICATE
        await tx.record_recertification(
            RecertificationEvidence(
                entitlement_key=str(record.key),
                decision=EVIDENCE_DECISION[decision.decision],
                reviewer=decision.reviewer,
                decided_at=decision.decided_at,
                ticket=decision.ticket,
                notes=decision.note,
            ),
            cause=cause,
        )
        if record.status not in REVOCABLE_STATUSES:
            outcome = DecisionOutcome.EVIDENCE_ONLY
        elif decision.decision is Decision.REVOKE:
            reason = f"revoked at recertification by {decision.reviewer}"
            await ctx.revoke(
                tx,
                record,
                RevokeDecision(RevocationTrigger.RECERTIFICATION, EntitlementChange.REVOKE_REQUESTED, reason),
                cause=cause,
                ticket=decision.ticket,
            )
            outcome = DecisionOutcome.REVOKED
        else:
            decided = max(decision.decided_at, record.last_recertified_at or decision.decided_at)
            interval = ctx.policy.recert.interval_for(record.principal_kind, record.recertification_interval)
            after = record.evolve(
                last_recertified_at=decided,
                recertification_interval=interval,
                recertification_due_at=decided + interval if interval else None,
                tickets=record.with_ticket(decision.ticket) if decision.ticket else record.tickets,
            )
            await tx.apply(
                record,
                after,
                change=EntitlementChange.RECERTIFIED,
                cause=cause,
                reason=f"certified by {decision.reviewer}",
            )
            outcome = DecisionOutcome.CERTIFIED
    ctx.metrics.action(f"recertification_{outcome.value}")
    return outcome
