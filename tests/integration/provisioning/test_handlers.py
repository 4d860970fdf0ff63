"""The handlers against a real record (PostgreSQL), without Kafka: every ticket and grant situation
the record must get right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementChange, EntitlementEvent, EntitlementStatus, RevocationTrigger
from closeloop.contracts.grants import GrantAction, PrincipalStatus, PrincipalStatusChanged
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.contracts.tickets import TicketKind, TicketReferences, TicketTransition
from closeloop.identity.store import link_groups, record_resources
from closeloop.record import Cause, EntitlementRecord, RecordTopics, record_transaction, repository, verify_chain
from closeloop.record.audit import history
from provisioning.activate_entitlement import activate_entitlement
from provisioning.confirm_revocation import confirm_revocation
from provisioning.context import Outcome, Provisioning, Unprocessable
from provisioning.create_entitlement import create_entitlement
from provisioning.policy import Policy
from provisioning.request_revocation import request_revocation
from provisioning.update_identity import update_identity
from tests.integration.provisioning.conftest import RecordDb
from tests.unit.provisioning.factories import grant, key, ticket

pytestmark = pytest.mark.integration

S = EntitlementStatus
TOPICS = RecordTopics(entitlements="h.entitlements", commands="h.commands", grants="h.grants")
NOW = datetime.now(UTC)


@pytest.fixture
def ctx(record_db: RecordDb) -> Provisioning:
    return Provisioning(pool=record_db.app, policy=Policy.load(), topics=TOPICS)


async def load(ctx: Provisioning, entitlement: EntitlementKey) -> EntitlementRecord:
    async with ctx.pool.acquire() as conn:
        record = await repository.load(conn, entitlement)
    assert record is not None
    return record


async def outbox(ctx: Provisioning, topic: str) -> list[bytes]:
    async with ctx.pool.acquire() as conn:
        return [r["value"] for r in await conn.fetch("SELECT value FROM outbox WHERE topic = $1 ORDER BY id", topic)]


async def entitlement_events(ctx: Provisioning) -> list[EntitlementEvent]:
    return [EntitlementEvent.model_validate_json(v) for v in await outbox(ctx, TOPICS.entitlements)]


async def issued(ctx: Provisioning) -> list[ProvisioningCommand]:
    return [ProvisioningCommand.model_validate_json(v) for v in await outbox(ctx, TOPICS.commands)]


async def activate(ctx: Provisioning, entitlement: EntitlementKey, **ticket_fields: object) -> None:
    await create_entitlement(ticket(entitlement, occurred_at=NOW, **ticket_fields), ctx)  # type: ignore[arg-type]
    await activate_entitlement(grant(entitlement), ctx)


async def test_approval_creates_a_pending_entitlement_and_a_grant_command(ctx: Provisioning) -> None:
    approval = ticket(occurred_at=NOW, ticket_number="RITM1")
    result = await create_entitlement(approval, ctx)
    assert (result.outcome, result.events, result.commands) == (Outcome.APPLIED, 1, 1)
    record = await load(ctx, key())
    assert record.status is S.PENDING
    assert record.owner == "bob.manager@example.com"
    assert record.expires_at == NOW + timedelta(days=30)
    assert record.recertification_interval == timedelta(days=180)
    (command,) = await issued(ctx)
    assert (command.action, command.reason, command.target_system) == (CommandAction.GRANT, "approved_request", "okta")
    assert command.confirm_by is not None
    assert command.ticket is not None
    assert command.ticket.ticket_number == "RITM1"
    assert (await create_entitlement(approval, ctx)).outcome is Outcome.DUPLICATE


async def test_grant_before_approval_activates_on_approval_without_a_command(ctx: Provisioning) -> None:
    seen = NOW - timedelta(minutes=5)
    result = await activate_entitlement(grant(key(), occurred_at=seen), ctx)
    assert (result.outcome, result.why) == (Outcome.SKIPPED, "grant without an approved entitlement")
    async with ctx.pool.acquire() as conn:
        assert await repository.load(conn, key()) is None  # no approved entitlement from a grant alone
        identity = await repository.load_identity(conn, key().principal)
    assert identity is not None
    assert identity.kind is IdentityKind.HUMAN
    await create_entitlement(ticket(occurred_at=NOW), ctx)
    record = await load(ctx, key())
    assert record.status is S.ACTIVE
    assert record.granted_at == seen
    assert [e.change for e in await entitlement_events(ctx)] == [
        EntitlementChange.REQUESTED,
        EntitlementChange.ACTIVATED,
    ]
    assert await issued(ctx) == []


async def test_older_grant_reports_do_not_undo_newer_ones(ctx: Provisioning) -> None:
    await activate(ctx, key())
    late_revoke = grant(key(), action=GrantAction.REVOKE, occurred_at=NOW - timedelta(days=1))
    result = await confirm_revocation(late_revoke, ctx)
    assert result.why == "older than the latest report from the source"
    assert (await load(ctx, key())).status is S.ACTIVE


async def test_repeat_grant_reports_reverify_at_most_once_per_interval(ctx: Provisioning) -> None:
    await activate(ctx, key())
    assert (await activate_entitlement(grant(key()), ctx)).why == "verified recently"
    eager = Provisioning(pool=ctx.pool, policy=ctx.policy, topics=TOPICS, reverify_after=timedelta(0))
    assert (await activate_entitlement(grant(key()), eager)).outcome is Outcome.APPLIED
    assert (await entitlement_events(ctx))[-1].change is EntitlementChange.VERIFIED


async def test_revocation_ticket_revokes_and_the_revoke_event_confirms(ctx: Provisioning) -> None:
    await activate(ctx, key())
    result = await request_revocation(
        ticket(kind=TicketKind.REVOCATION_REQUEST, ticket_id="sys-rev42", ticket_number="RITM42"), ctx
    )
    assert result.commands == 1
    record = await load(ctx, key())
    assert record.status is S.REVOKING
    assert record.revoke_confirm_by is not None
    assert record.revoke_requested_at is not None
    assert record.revoke_confirm_by - record.revoke_requested_at == timedelta(hours=1)  # okta: API executor
    closed = ticket(
        kind=TicketKind.REVOCATION_REQUEST,
        transition=TicketTransition.CLOSED_COMPLETE,
        ticket_id="sys-rev42",
        ticket_number="RITM42",
    )
    assert (await request_revocation(closed, ctx)).why == "nothing live to revoke"  # already on its way out
    await confirm_revocation(grant(key(), action=GrantAction.REVOKE), ctx)
    final = await load(ctx, key())
    assert final.status is S.REVOKED
    assert final.revoke_confirmed()
    assert (
        await confirm_revocation(grant(key(), action=GrantAction.REVOKE), ctx)
    ).why == "nothing to confirm (revoked)"
    # A later access ticket grants it again; a late delivery of the revocation must not end that grant.
    await activate(ctx, key(), ticket_id="sys-regrant", ticket_number="RITM77")
    assert (await load(ctx, key())).status is S.ACTIVE
    late = ticket(
        kind=TicketKind.REVOCATION_REQUEST,
        transition=TicketTransition.FULFILLED,
        ticket_id="sys-rev42",
        ticket_number="RITM42",
    )
    assert (
        await request_revocation(late, ctx)
    ).why == "the revocation was already carried out; this grant came after it"
    assert (await load(ctx, key())).status is S.ACTIVE
    assert [c.action for c in await issued(ctx)].count(CommandAction.REVOKE) == 1


async def test_revocation_of_an_unrecorded_live_grant_still_sends_the_revoke(ctx: Provisioning) -> None:
    await activate_entitlement(grant(key()), ctx)  # live at the source, never approved
    result = await request_revocation(ticket(kind=TicketKind.REVOCATION_REQUEST, ticket_number="RITM43"), ctx)
    assert result.commands == 1
    (command,) = await issued(ctx)
    assert (command.action, command.reason) == (CommandAction.REVOKE, RevocationTrigger.TICKET)
    async with ctx.pool.acquire() as conn:
        assert await repository.load(conn, key()) is None
    nothing = key(privilege="admin")
    assert (
        await request_revocation(ticket(nothing, kind=TicketKind.REVOCATION_REQUEST), ctx)
    ).why == "nothing live to revoke"


async def test_cancelled_access_ticket_revokes_what_it_approved(ctx: Provisioning) -> None:
    approval = ticket(ticket_id="sys-cancel", occurred_at=NOW)
    await create_entitlement(approval, ctx)
    other = ticket(ticket_id="sys-other", transition=TicketTransition.CLOSED_CANCELLED)
    assert (await request_revocation(other, ctx)).why == "the ticket approved no live entitlement"
    cancelled = ticket(ticket_id="sys-cancel", transition=TicketTransition.CLOSED_CANCELLED)
    assert (await request_revocation(cancelled, ctx)).commands == 1
    assert (await load(ctx, key())).status is S.REVOKING


async def test_policy_refusals_are_recorded_with_reasons(ctx: Provisioning) -> None:
    nhi = key("k8s:serviceaccount:ci/deployer", "k8s:clusterrole:cluster-admin", "bound")
    await create_entitlement(ticket(nhi, kind_of_principal=IdentityKind.SERVICE_ACCOUNT, ticket_number="RITM7"), ctx)
    refused = await load(ctx, nhi)
    assert refused.status is S.REFUSED
    assert refused.reason is not None
    assert "RITM7 refused by policy (rule kubernetes-cluster-roles)" in refused.reason
    assert "has no owner" in refused.reason
    assert await issued(ctx) == []
    # the same NHI asks again with an owner and a TTL: a new request, allowed
    fixed = ticket(
        nhi, kind_of_principal=IdentityKind.SERVICE_ACCOUNT, owner="carol@example.com", duration=timedelta(days=7)
    )
    await create_entitlement(fixed, ctx)
    allowed = await load(ctx, nhi)
    assert (allowed.status, allowed.owner, allowed.version) == (S.PENDING, "carol@example.com", 2)
    assert RevocationTrigger.OWNER_DEPARTURE in allowed.revocation_triggers


async def test_a_refused_renewal_leaves_the_live_entitlement_as_it_is(ctx: Provisioning) -> None:
    await activate(ctx, key())
    await create_entitlement(ticket(duration=timedelta(days=400), ticket_number="RITM9"), ctx)
    record = await load(ctx, key())
    assert record.status is S.ACTIVE
    assert record.last_change is EntitlementChange.REFUSED
    assert record.reason is not None
    assert "the existing entitlement is unchanged" in record.reason
    last = (await entitlement_events(ctx))[-1]
    assert (last.change, last.status) == (EntitlementChange.REFUSED, S.ACTIVE)


async def test_a_second_approved_ticket_renews_the_live_entitlement(ctx: Provisioning) -> None:
    await activate(ctx, key())
    later = NOW + timedelta(days=20)
    await create_entitlement(ticket(occurred_at=later, ticket_number="RITM2"), ctx)
    record = await load(ctx, key())
    assert record.status is S.ACTIVE
    assert record.last_change is EntitlementChange.RENEWED
    assert record.expires_at == later + timedelta(days=30)
    assert [t.ticket_number for t in record.tickets][-1] == "RITM2"
    assert len(await issued(ctx)) == 1  # still live: no second grant


async def test_exception_is_recorded_with_its_window_and_reviewer(ctx: Provisioning) -> None:
    admin = key("okta:user:alice@example.com", "okta:adminrole:SUPER_ADMIN", "assigned")
    window_end = NOW + timedelta(hours=4)
    exception = ticket(
        admin,
        kind=TicketKind.EXCEPTION,
        duration=None,
        occurred_at=NOW,
        incident_ticket="INC0099",
        window_start=NOW.isoformat(),
        window_end=window_end.isoformat(),
    )
    await create_entitlement(exception, ctx)
    record = await load(ctx, admin)
    assert (record.status, record.expires_at, record.exception_window_end) == (S.PENDING, window_end, window_end)
    assert RevocationTrigger.EXCEPTION_WINDOW_END in record.revocation_triggers
    async with ctx.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT reason, incident_ticket, reviewer, window_end FROM entitlement_exceptions")
    assert row is not None
    assert (row["incident_ticket"], row["reviewer"], row["window_end"]) == (
        "INC0099",
        "bob.manager@example.com",
        window_end,
    )
    unbounded = ticket(key(privilege="admin"), kind=TicketKind.EXCEPTION, duration=None, incident_ticket="INC1")
    await create_entitlement(unbounded, ctx)
    refused = await load(ctx, key(privilege="admin"))
    assert refused.status is S.REFUSED
    assert refused.reason is not None
    assert "must be time-bound" in refused.reason


async def test_grants_to_deactivated_identities_are_refused(ctx: Provisioning) -> None:
    status = PrincipalStatusChanged.create(
        occurred_at=NOW,
        source="okta://example.okta.com",
        correlation_id="c",
        principal=key().principal,
        status=PrincipalStatus.DEACTIVATED,
        source_system="okta",
        vendor_event_id="v1",
        vendor_event_type="user.lifecycle.deactivate",
    )
    assert (await update_identity(status, ctx)).outcome is Outcome.APPLIED
    older = status.model_copy(
        update={"event_id": "older", "status": PrincipalStatus.ACTIVE, "occurred_at": NOW - timedelta(days=1)}
    )
    assert (await update_identity(older, ctx)).why == "older than the identity's last status change"
    await create_entitlement(ticket(occurred_at=NOW), ctx)
    record = await load(ctx, key())
    assert record.status is S.REFUSED
    assert record.reason is not None
    assert "deactivated" in record.reason


async def test_tickets_that_name_nothing_are_unprocessable(ctx: Provisioning) -> None:
    bare = ticket().model_copy(update={"entitlement": None, "access": None})
    with pytest.raises(Unprocessable):
        await create_entitlement(bare, ctx)
    with pytest.raises(Unprocessable):
        await request_revocation(bare.model_copy(update={"kind": TicketKind.REVOCATION_REQUEST}), ctx)


async def test_requested_for_alias_resolves_to_the_known_principal(ctx: Provisioning) -> None:
    canonical = "okta:user:00u1alice0000000000a"
    async with record_transaction(ctx.pool, actor="test", topics=TOPICS) as tx:
        await tx.upsert_identity(
            canonical, cause=Cause.new(), kind=IdentityKind.HUMAN, aliases=["okta:user:alice@example.com"]
        )
    await create_entitlement(ticket(occurred_at=NOW), ctx)
    record = await load(ctx, key(canonical))
    assert record.status is S.PENDING


async def test_every_change_is_in_the_chain(ctx: Provisioning) -> None:
    await activate(ctx, key())
    await request_revocation(ticket(kind=TicketKind.REVOCATION_REQUEST), ctx)
    await confirm_revocation(grant(key(), action=GrantAction.REVOKE), ctx)
    async with ctx.pool.acquire() as conn:
        report = await verify_chain(conn)
        actions = [row.action for row in await history(conn, str(key()))]
    assert report.ok
    assert actions == ["requested", "grant_issued", "activated", "revoke_requested", "revoke_issued", "revoked"]


async def test_a_ticket_naming_a_person_by_email_and_a_repo_by_name_targets_the_linked_account(
    ctx: Provisioning,
) -> None:
    """The grant command goes to the person's GitHub account the identity graph links to the email, on the
    catalog's repository; until the names are known, nothing is provisioned and the approval is not spent."""
    canonical = key("github:user:dana-gh", "github:repo:acme/ledger", "write")
    provisional = key("github:user:dana@example.com", "github:repo:acme/ledger", "write")
    named = ticket(provisional, occurred_at=NOW, ticket_id="sys-named").model_copy(
        update={"references": TicketReferences(requested_for="dana@example.com", resource="acme/ledger")}
    )
    waiting = await create_entitlement(named, ctx)
    assert waiting.outcome is Outcome.SKIPPED
    assert "dana@example.com" in (waiting.why or "")
    async with ctx.pool.acquire() as conn, conn.transaction():
        await link_groups(conn, [("github:user:dana-gh", ["email:dana@example.com"])], "github")
        await record_resources(conn, [("github:repo:acme/ledger", None, ())], "github")
    later = named.model_copy(update={"event_id": "evt-named-fulfilled", "transition": TicketTransition.FULFILLED})
    assert (await create_entitlement(later, ctx)).outcome is Outcome.APPLIED
    record = await load(ctx, canonical)
    assert record.status is S.PENDING
    (command,) = await issued(ctx)
    assert command.key == canonical
    async with ctx.pool.acquire() as conn:
        assert await repository.load(conn, provisional) is None
