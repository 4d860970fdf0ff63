"""Revocation triggers, recertification decisions and concurrent workers against real PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, RevocationTrigger, TicketRef
from closeloop.contracts.grants import PrincipalStatus, PrincipalStatusChanged
from closeloop.contracts.identity import IdentityKind
from closeloop.contracts.tickets import TicketKind, TicketTransition
from closeloop.identity.store import link_groups
from closeloop.record import Cause, record_transaction, repository
from expiry.apply_triggers import end_project, offboard_principal
from expiry.clock import FakeClock
from expiry.expire_entitlements import expire_entitlements
from expiry.recertification import Decision, RecertPolicy
from expiry.record_recertification_decision import DecisionOutcome, record_recertification_decision
from expiry.revoke_offboarded_principal import record_offboarding
from expiry.settings import ExpirySettings
from expiry.sweeper import Sweeper, drain
from expiry.triggers import EndProject, OffboardPrincipal, RecertificationDecision, from_principal_status, from_ticket
from tests.integration.expiry.helpers import (
    bulk_seed,
    changes,
    commands,
    context,
    fresh_key,
    key_for,
    policy,
    record_of,
    seed,
    unique_topics,
)
from tests.unit.reconciliation.scenarios import ticket as ticket_event

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PROJECT_TICKET = TicketRef(system="jira", ticket_id="10042", ticket_number="OPS-42", kind="project_end")


def deactivated(principal: str, event_id: str = "evt-deactivate-1") -> PrincipalStatusChanged:
    event: PrincipalStatusChanged = PrincipalStatusChanged.create(
        event_id=event_id,
        occurred_at=T0,
        source="okta://example.okta.com",
        correlation_id=f"corr-{event_id}",
        principal=principal,
        status=PrincipalStatus.DEACTIVATED,
        source_system="okta",
        vendor_event_id=f"okta-{event_id}",
        vendor_event_type="user.lifecycle.deactivate",
    )
    return event


async def test_offboarding_revokes_everything_the_person_holds_and_flags_what_they_own(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    ctx = context(pool, clock, topics)
    alice = "okta:user:alice@example.com"
    async with record_transaction(pool, actor="provisioning", topics=topics, clock=clock.now) as tx:
        await tx.upsert_identity(alice, cause=Cause.new(), kind=IdentityKind.HUMAN, aliases=["github:user:alice-gh"])
    held = [
        key_for(alice),
        key_for(alice, "okta:app:0oa1salesforce", "assigned"),
        key_for("entra:user:alice@example.com", "entra:group:7f3e", "member"),
        key_for("github:user:alice-gh", "github:repo:acme/api", "write"),
    ]
    owned_nhi = key_for(
        "aws:role:arn:aws:iam::123456789012:role/ci-deployer",
        "aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess",
        "attached",
    )
    bystander = key_for("okta:user:bob@example.com")
    for key in held:
        await seed(pool, key, clock, topics, expires_at=T0 + timedelta(days=30))
    await seed(pool, owned_nhi, clock, topics, principal_kind=IdentityKind.SERVICE_ACCOUNT, owner="alice@example.com")
    await seed(pool, bystander, clock, topics, owner="okta:user:carol@example.com")

    trigger = from_principal_status(deactivated(alice), ExpirySettings().offboarded_statuses)
    result = await offboard_principal(ctx, trigger)  # type: ignore[arg-type]
    assert (result.revoked, result.flagged) == (4, 1)

    sent = await commands(pool, topics)
    assert sorted(str(c.key) for c in sent) == sorted(str(k) for k in held)
    assert {c.reason for c in sent} == {RevocationTrigger.OFFBOARDING}
    for key in held:
        record = await record_of(pool, key)
        assert record.status is EntitlementStatus.REVOKING
        assert record.reason == f"principal {alice} offboarded"
    nhi = await record_of(pool, owned_nhi)
    assert nhi.status is EntitlementStatus.ACTIVE
    assert nhi.last_change is EntitlementChange.OWNER_OFFBOARDED
    assert (await record_of(pool, bystander)).last_change is EntitlementChange.ACTIVATED

    again = await offboard_principal(ctx, trigger)  # type: ignore[arg-type]
    assert again.duplicate
    assert len(await commands(pool, topics)) == 4
    assert (await changes(pool, topics, owned_nhi)).count(EntitlementChange.OWNER_OFFBOARDED) == 1


async def test_an_interrupted_offboarding_is_finished_by_the_next_sweep(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    ctx = context(pool, clock, topics)
    dave = "okta:user:dave@example.com"
    keys = [key_for(dave, f"okta:group:00g{i}", "member") for i in range(3)]
    for key in keys:
        await seed(pool, key, clock, topics)
    trigger = from_principal_status(deactivated(dave, "evt-dave"), ExpirySettings().offboarded_statuses)
    stored = await record_offboarding(ctx, trigger)  # type: ignore[arg-type]
    assert stored is not None  # stored, then the worker "crashed" before applying it
    assert await commands(pool, topics) == []

    report = await Sweeper(ctx, interval_s=1).sweep_once()
    assert report.triggers_resumed == 1
    assert sorted(str(c.key) for c in await commands(pool, topics)) == sorted(str(k) for k in keys)
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT completed_at, revoked_count FROM expiry_triggers WHERE id = $1", stored.id)
    assert row["completed_at"] is not None
    assert row["revoked_count"] == 3
    assert (await Sweeper(ctx, interval_s=1).sweep_once()).triggers_resumed == 0


async def test_project_end_revokes_what_is_tagged_with_the_project(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    ctx = context(pool, clock, topics)
    apollo = [fresh_key("apollo") for _ in range(2)]
    other = fresh_key("gemini")
    for key in apollo:
        await seed(pool, key, clock, topics, project="apollo")
    await seed(pool, other, clock, topics, project="gemini")
    result = await end_project(
        ctx,
        EndProject(
            project="apollo", occurred_at=T0, source_event_id="evt-p1", correlation_id="c-p1", ticket=PROJECT_TICKET
        ),
    )
    assert result.revoked == 2
    sent = await commands(pool, topics)
    assert sorted(str(c.key) for c in sent) == sorted(str(k) for k in apollo)
    assert all(c.reason is RevocationTrigger.PROJECT_END and c.ticket == PROJECT_TICKET for c in sent)
    assert PROJECT_TICKET in (await record_of(pool, apollo[0])).tickets
    assert (await record_of(pool, other)).status is EntitlementStatus.ACTIVE


async def test_recertification_decisions_are_evidence_and_act(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    recert = RecertPolicy(
        interval_human=timedelta(days=180),
        interval_nhi=timedelta(days=90),
        due_lead=timedelta(days=14),
        overdue_grace=timedelta(0),
        revoke_after=None,
    )
    ctx = context(pool, clock, topics, policy(recert=recert))
    kept, removed = fresh_key("kept"), fresh_key("removed")
    await seed(pool, kept, clock, topics, principal_kind=IdentityKind.HUMAN)
    await seed(pool, removed, clock, topics, principal_kind=IdentityKind.HUMAN)
    ticket = TicketRef(system="servicenow", ticket_id="sys-r1", ticket_number="RITM0099", kind="recertification")
    decided = T0 + timedelta(days=170)
    clock.set(decided)

    certify = RecertificationDecision(
        key=kept,
        decision=Decision.CERTIFY,
        reviewer="mgr@example.com",
        decided_at=decided,
        source_event_id="evt-r1",
        correlation_id="c-r1",
        ticket=ticket,
        note="still on the team",
    )
    assert await record_recertification_decision(ctx, certify) is DecisionOutcome.CERTIFIED
    assert await record_recertification_decision(ctx, certify) is DecisionOutcome.DUPLICATE
    # The same ticket's approval proved again by a later transition (another input event): one decision.
    proved_again = replace(certify, source_event_id="evt-r1-closed", decision_id="approval:servicenow:sys-r1:k")
    first_proof = replace(certify, source_event_id="evt-r1-fulfilled", decision_id="approval:servicenow:sys-r1:k")
    assert await record_recertification_decision(ctx, first_proof) is DecisionOutcome.CERTIFIED
    assert await record_recertification_decision(ctx, proved_again) is DecisionOutcome.DUPLICATE
    record = await record_of(pool, kept)
    assert record.last_change is EntitlementChange.RECERTIFIED
    assert record.last_recertified_at == decided
    assert record.recertification_due_at == decided + timedelta(days=180)
    assert ticket in record.tickets

    revoke = RecertificationDecision(
        key=removed,
        decision=Decision.REVOKE,
        reviewer="mgr@example.com",
        decided_at=decided,
        source_event_id="evt-r2",
        correlation_id="c-r2",
        ticket=ticket,
    )
    assert await record_recertification_decision(ctx, revoke) is DecisionOutcome.REVOKED
    assert [(c.key, c.reason) for c in await commands(pool, topics)] == [(removed, RevocationTrigger.RECERTIFICATION)]

    unknown = RecertificationDecision(
        key=fresh_key("ghost"),
        decision=Decision.CERTIFY,
        reviewer="mgr@example.com",
        decided_at=decided,
        source_event_id="evt-r3",
        correlation_id="c-r3",
    )
    assert await record_recertification_decision(ctx, unknown) is DecisionOutcome.UNKNOWN_ENTITLEMENT

    async with pool.acquire() as conn:
        evidence = await repository.recertifications_for(conn, kept)
        removed_evidence = await repository.recertifications_for(conn, removed)
    assert [(e.decision, e.reviewer, e.notes) for e in evidence] == [
        ("certified", "mgr@example.com", "still on the team"),
        ("certified", "mgr@example.com", "still on the team"),
    ]
    assert evidence[0].ticket == ticket
    assert [e.decision for e in removed_evidence] == ["revoked"]


async def test_two_workers_split_the_due_rows_and_revoke_each_once(
    pool: asyncpg.Pool, owner: asyncpg.Connection
) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    keys = [fresh_key(f"w{i}") for i in range(600)]
    await bulk_seed(owner, keys, expires_at=T0 - timedelta(minutes=1), created_at=T0 - timedelta(days=1))
    first = context(pool, clock, topics, policy(batch_size=50))
    second = context(pool, clock, topics, policy(batch_size=50))
    done = await asyncio.gather(drain(first, expire_entitlements), drain(second, expire_entitlements))
    assert sum(done) == 600
    assert all(n > 0 for n in done), f"both workers should have taken batches: {done}"
    sent = await commands(pool, topics)
    assert len(sent) == 600
    assert len({c.key for c in sent}) == 600


async def test_offboarding_reaches_every_account_the_identity_graph_links(pool: asyncpg.Pool) -> None:
    """Deactivated in Okta: the person's AWS user and Vault user (linked to their email by connector records)
    are revoked too; nothing else is."""
    clock, topics = FakeClock(T0), unique_topics()
    ctx = context(pool, clock, topics)
    tag = fresh_key().principal.rsplit(":", 1)[-1].split("@")[0][-8:]
    dora = f"okta:user:dora.{tag}@example.com"
    linked_accounts = [f"aws:user:arn:aws:iam::123456789012:user/dora-{tag}", f"vault:user:dora-{tag}"]
    async with pool.acquire() as conn, conn.transaction():
        for account in (dora, *linked_accounts):
            await link_groups(conn, [(account, [f"email:dora.{tag}@example.com"])], account.split(":", 1)[0])
    held = [
        key_for(dora),
        key_for(linked_accounts[0], "aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess", "attached"),
        key_for(linked_accounts[1], f"vault:policy:payments-{tag}", "attached"),
    ]
    bystander = key_for(f"vault:user:dorothy-{tag}", f"vault:policy:payments-{tag}", "attached")
    for key in (*held, bystander):
        await seed(pool, key, clock, topics, expires_at=T0 + timedelta(days=30))
    trigger = from_principal_status(deactivated(dora, f"evt-dora-{tag}"), ExpirySettings().offboarded_statuses)
    result = await offboard_principal(ctx, trigger)  # type: ignore[arg-type]
    assert result.revoked == 3
    assert sorted(str(c.key) for c in await commands(pool, topics)) == sorted(str(k) for k in held)
    assert (await record_of(pool, bystander)).status is EntitlementStatus.ACTIVE


async def test_an_offboarding_ticket_naming_only_an_email_reaches_every_linked_account(pool: asyncpg.Pool) -> None:
    """The ticket says `erin@example.com` and nothing else: her AWS and Vault users (linked to the email by
    connector records) are revoked, in every system, and nobody else's."""
    clock, topics = FakeClock(T0), unique_topics()
    ctx = context(pool, clock, topics)
    tag = fresh_key().principal.rsplit(":", 1)[-1].split("@")[0][-8:]
    email = f"erin.{tag}@example.com"
    held = [
        key_for(
            f"aws:user:arn:aws:iam::123456789012:user/erin-{tag}",
            "aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess",
            "attached",
        ),
        key_for(f"vault:user:erin-v-{tag}", f"vault:policy:payments-{tag}", "attached"),
    ]
    async with pool.acquire() as conn, conn.transaction():
        for key in held:
            await link_groups(conn, [(key.principal, [f"email:{email}"])], key.system)
    bystander = key_for(f"vault:user:erwin-{tag}", f"vault:policy:payments-{tag}", "attached")
    for key in (*held, bystander):
        await seed(pool, key, clock, topics, expires_at=T0 + timedelta(days=30))
    offboarding = ticket_event(
        None, TicketTransition.CLOSED_COMPLETE, T0, ticket_id=f"off-{tag}", kind=TicketKind.OFFBOARDING,
        requested_for=email,
    )  # fmt: skip
    trigger = from_ticket(offboarding)
    assert isinstance(trigger, OffboardPrincipal)
    result = await offboard_principal(ctx, trigger)
    assert result.revoked == 2
    assert sorted(str(c.key) for c in await commands(pool, topics)) == sorted(str(k) for k in held)
    assert (await record_of(pool, bystander)).status is EntitlementStatus.ACTIVE
