"""A ticket that ends one entitlement: move it to *revoking* and send its revoke command.

* revocation request (once approved: any transition that proves it): the entitlement the ticket names;
* an access or exception ticket cancelled or rejected: the entitlement it had approved.

Tickets that fan out (offboarding, project end, recertification) belong to the expiry service, the one
owner of every trigger that reaches many entitlements. Each revoke starts through
`closeloop.record.begin_revoke`, with the deadline of the entitlement's executor; the record stays
*revoking* until the source reports the removal (confirm_revocation). If a revocation ticket names a
grant the record never approved but the source reported live, the revoke command still goes out: a
closed ticket must mean removed access.

A revocation ticket's approval is acted on once, whichever delivery proves it first: a later delivery
of the same ticket (closed complete after approved) must not revoke a grant that a later access ticket
made in between.
"""

from __future__ import annotations

from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import RevocationTrigger
from closeloop.contracts.identity import EntitlementKey
from closeloop.contracts.ticket_interpretation import TicketInterpretation, interpret
from closeloop.contracts.tickets import TicketEvent, TicketKind
from closeloop.record import (
    REVOCABLE_STATUSES,
    Cause,
    RecordTransaction,
    begin_revoke,
    derived_id,
    record_transaction,
    repository,
)
from provisioning.context import Outcome, Provisioning, Result, Unprocessable


async def request_revocation(ticket: TicketEvent, ctx: Provisioning) -> Result:
    meaning = interpret(ticket)
    cause = Cause(correlation_id=ticket.correlation_id, event_id=ticket.event_id)
    ref = meaning.ticket
    async with record_transaction(ctx.pool, actor=ctx.actor, topics=ctx.topics, clock=ctx.clock) as tx:
        if not await tx.claim(ctx.consumer, ticket.event_id):
            return Result.duplicate()
        if ticket.kind is TicketKind.REVOCATION_REQUEST:
            key = await _named_key(tx, meaning)
            record = await tx.lock(key)
            if record is None or not record.is_live:
                return await _revoke_unrecorded(tx, key, meaning, cause, ctx)
            if record.status in REVOCABLE_STATUSES and not await tx.claim(ctx.consumer, _revocation_claim(meaning)):
                return Result.skipped("the revocation was already carried out; this grant came after it")
        else:  # an access or exception ticket was cancelled or rejected
            cancelled = meaning.entitlement
            record = await tx.lock(cancelled) if cancelled is not None else None
            approving = record.approving_ticket if record is not None else None
            if (
                record is None
                or approving is None
                or (approving.system, approving.ticket_id) != (ref.system, ref.ticket_id)
            ):
                return Result.skipped("the ticket approved no live entitlement")
        command = await begin_revoke(
            tx,
            record,
            RevocationTrigger.TICKET,
            confirmation=ctx.policy.confirmation,
            cause=cause,
            reason=f"revoke requested by {ref.ticket_number} ({ticket.kind.value}, {ticket.transition.value})",
            ticket=ref,
        )
        if command is None:  # already on its way out; its deadline stands
            return Result.skipped("nothing live to revoke")
        return Result(Outcome.APPLIED, events=len(tx.events), commands=len(tx.commands))


def _revocation_claim(meaning: TicketInterpretation) -> str:
    """Claimed once per revocation ticket approval, whichever delivery proves it first."""
    return f"revoke:{meaning.approval_key}"


async def _named_key(tx: RecordTransaction, meaning: TicketInterpretation) -> EntitlementKey:
    key = meaning.entitlement
    if key is None:
        raise Unprocessable("revocation ticket names no entitlement (needs requested_for and access)")
    resolved = await repository.resolve_principal(tx.conn, key.principal)
    if resolved and resolved != key.principal:
        key = EntitlementKey(principal=resolved, resource=key.resource, privilege=key.privilege)
    return key


async def _revoke_unrecorded(
    tx: RecordTransaction, key: EntitlementKey, meaning: TicketInterpretation, cause: Cause, ctx: Provisioning
) -> Result:
    """A revocation for a grant the record does not hold: revoke it anyway if the source says it is live."""
    observed = await tx.observed(key)
    if observed is None or not observed.live:
        return Result.skipped("nothing live to revoke")
    if not await tx.claim(ctx.consumer, _revocation_claim(meaning)):
        return Result.skipped("the revocation was already carried out; this grant came after it")
    ref = meaning.ticket
    now = tx.now()
    command_id = derived_id("command", "revoke", str(key), "ticket", ref.system, ref.ticket_id)
    command = ProvisioningCommand.create(
        event_id=derived_id("command-event", command_id),
        occurred_at=now,
        source=f"closeloop/{ctx.actor}",
        correlation_id=cause.correlation_id,
        command_id=command_id,
        action=CommandAction.REVOKE,
        key=key,
        target_system=key.system,
        reason=RevocationTrigger.TICKET,
        ticket=ref,
        confirm_by=now + ctx.confirm_window(key, revoke=True),
    )
    await tx.issue(command, cause=cause)
    return Result(Outcome.APPLIED, "revoked a grant the record never approved", commands=1)
