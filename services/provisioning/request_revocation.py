"""A ticket that ends access: move the matched entitlements to *revoking* and send revoke commands.

* revocation request (once approved: any transition that proves it): the entitlement the ticket names;
* offboarding (likewise): every live entitlement of the person;
* an access or exception ticket cancelled or rejected: the entitlement it had approved.

Each revoke carries a confirmation deadline (policy `confirmation`); the record stays *revoking* until
the source reports the removal (confirm_revocation). If a revocation ticket names a grant the record
never approved but the source reported live, the revoke command still goes out: a closed ticket must
mean removed access.
"""

from __future__ import annotations

from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, RevocationTrigger, TicketRef
from closeloop.contracts.identity import EntitlementKey
from closeloop.contracts.ticket_interpretation import TicketInterpretation, interpret
from closeloop.contracts.tickets import TicketEvent, TicketKind
from closeloop.record import Cause, EntitlementRecord, RecordTransaction, derived_id, record_transaction, repository
from provisioning.context import Outcome, Provisioning, Result, Unprocessable


async def request_revocation(ticket: TicketEvent, ctx: Provisioning) -> Result:
    meaning = interpret(ticket)
    cause = Cause(correlation_id=ticket.correlation_id, event_id=ticket.event_id)
    ref = meaning.ticket
    async with record_transaction(ctx.pool, actor=ctx.actor, topics=ctx.topics, clock=ctx.clock) as tx:
        if not await tx.claim(ctx.consumer, ticket.event_id):
            return Result.duplicate()
        if ticket.kind is TicketKind.OFFBOARDING:
            principals, names = set(meaning.beneficiary.principals), set(meaning.beneficiary.names)
            if not principals and not names:
                raise Unprocessable("offboarding ticket names nobody (requested_for is empty)")
            principals |= set(await repository.principals_for_alias(tx.conn, names))
            records = await repository.lock_by_principal_names(tx.conn, principals, names)
            trigger = RevocationTrigger.OFFBOARDING
        elif ticket.kind is TicketKind.REVOCATION_REQUEST:
            key = await _named_key(tx, meaning)
            record = await tx.lock(key)
            if record is None or not record.is_live:
                return await _revoke_unrecorded(tx, key, ref, cause, ctx)
            records = [record]
            trigger = RevocationTrigger.TICKET
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
            records = [record]
            trigger = RevocationTrigger.TICKET
        revoked = 0
        for record in records:
            if record.status is EntitlementStatus.REVOKING:
                continue  # already on its way out; its deadline stands
            await revoke(
                tx,
                record,
                trigger,
                ref,
                cause,
                ctx,
                reason=f"{ref.ticket_number} ({ticket.kind.value}, {ticket.transition.value})",
            )
            revoked += 1
        if revoked == 0:
            return Result.skipped("nothing live to revoke")
        return Result(Outcome.APPLIED, events=len(tx.events), commands=len(tx.commands))


async def revoke(
    tx: RecordTransaction,
    record: EntitlementRecord,
    trigger: RevocationTrigger,
    ref: TicketRef | None,
    cause: Cause,
    ctx: Provisioning,
    *,
    reason: str,
) -> EntitlementRecord:
    """Move one live entitlement to *revoking* and issue its revoke command (same transaction)."""
    now = tx.now()
    confirm_by = now + ctx.confirm_window(record.key, revoke=True)
    stored = await tx.apply(
        record,
        record.evolve(
            status=EntitlementStatus.REVOKING,
            tickets=record.with_ticket(ref) if ref else record.tickets,
            revoke_requested_at=now,
            revoke_confirm_by=confirm_by,
        ),
        change=EntitlementChange.REVOKE_REQUESTED,
        reason=f"revoke requested by {reason}",
        cause=cause,
    )
    await tx.issue(
        stored.command(CommandAction.REVOKE, trigger, cause=cause, actor=ctx.actor, confirm_by=confirm_by, ticket=ref),
        cause=cause,
    )
    return stored


async def _named_key(tx: RecordTransaction, meaning: TicketInterpretation) -> EntitlementKey:
    key = meaning.entitlement
    if key is None:
        raise Unprocessable("revocation ticket names no entitlement (needs requested_for and access)")
    resolved = await repository.resolve_principal(tx.conn, key.principal)
    if resolved and resolved != key.principal:
        key = EntitlementKey(principal=resolved, resource=key.resource, privilege=key.privilege)
    return key


async def _revoke_unrecorded(
    tx: RecordTransaction, key: EntitlementKey, ref: TicketRef, cause: Cause, ctx: Provisioning
) -> Result:
    """A revocation for a grant the record does not hold: revoke it anyway if the source says it is live."""
    observed = await tx.observed(key)
    if observed is None or not observed.live:
        return Result.skipped("nothing live to revoke")
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
