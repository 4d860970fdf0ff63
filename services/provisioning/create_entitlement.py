"""An approved access or exception ticket: record the entitlement (pending) and ask for the grant.

Policy decides first. Refused: the record says so, with the reason, and nothing is granted. Allowed:
the entitlement is created *pending* with its owner, expiry and revocation triggers, and a grant
command goes out through the outbox, all in one transaction. If the source already reported the grant
live (the grant event overtook the ticket), the entitlement is activated at once instead.
"""

from __future__ import annotations

from closeloop.contracts.commands import CommandAction
from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, TicketRef
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.contracts.ticket_interpretation import TicketInterpretation, canonical, interpret
from closeloop.contracts.tickets import TicketEvent, TicketKind
from closeloop.identity import Directory
from closeloop.identity.bind import bind_ticket
from closeloop.identity.store import directory_for
from closeloop.record import (
    KEEP,
    Cause,
    EntitlementRecord,
    ExceptionGrant,
    RecordTransaction,
    record_transaction,
    repository,
)
from provisioning.context import Outcome, Provisioning, Result, Unprocessable
from provisioning.policy import AccessRequest, Grant, Refusal


async def create_entitlement(ticket: TicketEvent, ctx: Provisioning) -> Result:
    meaning = interpret(ticket)
    if meaning.entitlement is None:
        raise Unprocessable("approved access ticket names no entitlement (needs requested_for and access)")
    cause = Cause(correlation_id=ticket.correlation_id, event_id=ticket.event_id)
    ref = meaning.ticket
    async with record_transaction(ctx.pool, actor=ctx.actor, topics=ctx.topics, clock=ctx.clock) as tx:
        if not await tx.claim(ctx.consumer, ticket.event_id):
            return Result.duplicate()
        bound = await bind_references(tx, ticket, ctx)
        if isinstance(bound, str):
            # Not claimed as the ticket's approval: a later transition tries again once the names are known
            # (the reconciler raises UNRESOLVED_REFERENCE / AMBIGUOUS_REFERENCE meanwhile).
            return Result.skipped(bound)
        meaning = interpret(bound)
        # Every later transition proves the approval again (in fulfilment, fulfilled, closed complete):
        # the first delivery that proves it is acted on, the others are not a second approval.
        if not await tx.claim(ctx.consumer, meaning.approval_key):
            return Result.skipped("the ticket's approval was already counted")
        key = await _resolve_key(tx, meaning)
        identity = await repository.load_identity(tx.conn, key.principal)
        kind = ticket.requested_for_kind
        if kind is IdentityKind.UNKNOWN and identity is not None:
            kind = identity.kind
        owner = ticket.owner or (identity.owner if identity is not None and kind.is_nhi else None)
        await _note_identity(tx, meaning, key, kind, owner, cause)

        record = await tx.lock(key)
        already = record is not None and record.has_ticket(ref.system, ref.ticket_id)
        if already and record is not None and (record.is_live or record.status is EntitlementStatus.REFUSED):
            return Result.skipped("ticket already recorded")
        decision = ctx.policy.evaluate(
            AccessRequest(
                key=key,
                principal_kind=kind,
                decided_at=ticket.occurred_at,
                owner=owner,
                approvers=meaning.approvers,
                requested_duration=ticket.requested_duration,
                requested_until=ticket.requested_until,
                project=ticket.project,
                principal_inactive=identity is not None and identity.is_inactive,
                exception=ticket.kind is TicketKind.EXCEPTION,
                justification=ticket.justification,
                incident_ticket=ticket.incident_ticket,
                window_start=ticket.window_start,
                window_end=ticket.window_end,
            )
        )
        if record is not None and record.status is EntitlementStatus.REVOKING and isinstance(decision, Grant):
            decision = Refusal("the entitlement is being revoked; request it again once the revoke is confirmed")
        if isinstance(decision, Refusal):
            await _refuse(tx, record, key, ref, kind, owner, ticket, decision, cause)
            return Result(Outcome.APPLIED, "refused", events=len(tx.events))
        if record is not None and record.is_live:
            await _renew(tx, record, ref, ticket, decision, cause)
        else:
            await _request(tx, record, key, ref, kind, ticket, decision, cause, ctx)
        return Result(Outcome.APPLIED, events=len(tx.events), commands=len(tx.commands))


async def bind_references(tx: RecordTransaction, ticket: TicketEvent, ctx: Provisioning) -> TicketEvent | str:
    """The ticket as if it had named ids (the person's one account on the system, the catalog's resource), or
    why it cannot be yet: a name nobody taught, an ambiguous name, or several accounts to choose from."""
    refs, access = ticket.references, ticket.access
    if refs is None or access is None:
        return ticket
    directory = await directory_for(
        tx.conn,
        Directory.from_settings(ctx.identity),
        people=[refs.requested_for] if refs.requested_for else [],
        system=access.system,
        resources=[r for r in (refs.resource, access.resource) if r],
    )
    binding = bind_ticket(ticket, directory)
    if binding.pending:
        return "references not bound: " + "; ".join((*binding.unresolved, *binding.ambiguous))
    if len(binding.events) > 1:
        accounts = ", ".join(e.requested_for or "" for e in binding.events)
        return f"the beneficiary has several accounts on {access.system} ({accounts}); name one in the ticket"
    return binding.events[0]


async def _resolve_key(tx: RecordTransaction, meaning: TicketInterpretation) -> EntitlementKey:
    """The ticket's entitlement, its beneficiary resolved through the identity graph when that names it otherwise."""
    principal = meaning.beneficiary.principal
    resolved = await repository.resolve_principal(tx.conn, principal) if principal else None
    key = meaning.entitlement_for(resolved) if resolved and resolved != principal else meaning.entitlement
    if key is None:
        raise Unprocessable("approved access ticket names no entitlement (needs requested_for and access)")
    return key


async def _note_identity(
    tx: RecordTransaction,
    meaning: TicketInterpretation,
    key: EntitlementKey,
    kind: IdentityKind,
    owner: str | None,
    cause: Cause,
) -> None:
    """Learn what the ticket says about the beneficiary: its kind, an NHI's owner, the name it used."""
    current = await repository.load_identity(tx.conn, key.principal)
    reference = meaning.beneficiary.reference
    aliases = [reference] if reference and canonical(reference) is None else []
    needs_owner = kind.is_nhi and owner and (current is None or not current.owner)
    if current is None or needs_owner or (aliases and aliases[0] not in current.aliases):
        await tx.upsert_identity(
            key.principal,
            cause=cause,
            kind=kind,
            owner=owner if needs_owner else KEEP,
            aliases=aliases,
        )


async def _refuse(
    tx: RecordTransaction,
    record: EntitlementRecord | None,
    key: EntitlementKey,
    ref: TicketRef,
    kind: IdentityKind,
    owner: str | None,
    ticket: TicketEvent,
    refusal: Refusal,
    cause: Cause,
) -> None:
    rule = f" (rule {refusal.rule})" if refusal.rule else ""
    reason = f"{ref.ticket_number} refused by policy{rule}: {refusal.reason}"
    if record is not None and record.is_live:
        # A live entitlement stays as it is; the event still shows the refusal and its reason.
        await tx.apply(
            record,
            record,
            change=EntitlementChange.REFUSED,
            reason=f"{reason}; the existing entitlement is unchanged",
            cause=cause,
        )
        return
    refused = EntitlementRecord.new(
        key,
        status=EntitlementStatus.REFUSED,
        principal_kind=kind,
        owner=owner,
        tickets=(ref,),
        project=ticket.project,
    )
    await tx.apply(record, refused, change=EntitlementChange.REFUSED, reason=reason, cause=cause)


async def _renew(
    tx: RecordTransaction,
    record: EntitlementRecord,
    ref: TicketRef,
    ticket: TicketEvent,
    grant: Grant,
    cause: Cause,
) -> None:
    triggers = tuple(dict.fromkeys((*record.revocation_triggers, *grant.revocation_triggers)))
    renewed = record.evolve(
        tickets=record.with_ticket(ref),
        owner=grant.owner or record.owner,
        expires_at=grant.expires_at,
        revocation_triggers=triggers,
        recertification_interval=grant.recertification_interval,
        project=ticket.project or record.project,
        exception_window_end=grant.exception_window_end,
    )
    until = grant.expires_at.isoformat() if grant.expires_at else "no expiry"
    await tx.apply(
        record,
        renewed,
        change=EntitlementChange.RENEWED,
        reason=f"renewed by {ref.ticket_number} until {until}",
        cause=cause,
    )
    await _record_exception(tx, record.key, ref, ticket, grant, cause)


async def _request(
    tx: RecordTransaction,
    record: EntitlementRecord | None,
    key: EntitlementKey,
    ref: TicketRef,
    kind: IdentityKind,
    ticket: TicketEvent,
    grant: Grant,
    cause: Cause,
    ctx: Provisioning,
) -> None:
    pending = EntitlementRecord.new(
        key,
        status=EntitlementStatus.PENDING,
        principal_kind=kind,
        owner=grant.owner,
        tickets=(ref,),
        expires_at=grant.expires_at,
        revocation_triggers=grant.revocation_triggers,
        project=ticket.project,
        recertification_interval=grant.recertification_interval,
        exception_window_end=grant.exception_window_end,
    )
    stored = await tx.apply(
        record,
        pending,
        change=EntitlementChange.REQUESTED,
        reason=f"approved by {ref.ticket_number} (policy rule {grant.rule}, tier {grant.tier})",
        cause=cause,
    )
    await _record_exception(tx, key, ref, ticket, grant, cause)
    observed = await tx.observed(key)
    if observed is not None and observed.live:
        await tx.apply(
            stored,
            stored.evolve(status=EntitlementStatus.ACTIVE, granted_at=observed.observed_at, verified_at=tx.now()),
            change=EntitlementChange.ACTIVATED,
            reason=f"the grant was already live at {observed.source_system} when {ref.ticket_number} was approved",
            cause=cause,
        )
        return
    confirm_by = tx.now() + ctx.confirm_window(key, revoke=False)
    command = stored.command(
        CommandAction.GRANT, "approved_request", cause=cause, actor=ctx.actor, confirm_by=confirm_by, ticket=ref
    )
    await tx.issue(command, cause=cause)


async def _record_exception(
    tx: RecordTransaction, key: EntitlementKey, ref: TicketRef, ticket: TicketEvent, grant: Grant, cause: Cause
) -> None:
    if ticket.kind is not TicketKind.EXCEPTION or grant.exception_window_end is None:
        return
    await tx.record_exception(
        ExceptionGrant(
            entitlement_key=str(key),
            reason=(ticket.justification or "").strip() or "exception",
            incident_ticket=ticket.incident_ticket,
            ticket=ref,
            window_start=ticket.window_start or ticket.occurred_at,
            window_end=grant.exception_window_end,
            reviewer=grant.reviewer,
        ),
        cause=cause,
    )
