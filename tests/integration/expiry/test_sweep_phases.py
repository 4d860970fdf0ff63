"""Each sweep phase against real PostgreSQL, driven by a fake clock (no waiting on wall time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from closeloop.contracts.commands import CommandAction
from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus, RevocationTrigger
from closeloop.contracts.identity import IdentityKind
from closeloop.record import Cause, record_transaction, repository
from expiry.check_revoke_confirmations import check_revoke_confirmations
from expiry.clock import FakeClock
from expiry.end_exceptions import end_exceptions
from expiry.enforce_recertification import enforce_recertification
from expiry.expire_entitlements import expire_entitlements
from expiry.plan_sweep import plan_sweep
from expiry.recertification import RecertPolicy
from expiry.send_expiry_notices import send_expiry_notices
from expiry.sweeper import Sweeper, drain
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

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def confirm_at_source(pool: asyncpg.Pool, key: object, clock: FakeClock, topics: object) -> None:
    """What provisioning does on the matching grant-revoke event: revoking -> revoked, verified now."""
    async with record_transaction(pool, actor="provisioning", topics=topics, clock=clock.now) as tx:  # type: ignore[arg-type]
        record = await tx.lock(key)  # type: ignore[arg-type]
        assert record is not None
        await tx.apply(
            record,
            record.evolve(status=EntitlementStatus.REVOKED, verified_at=clock.now()),
            change=EntitlementChange.REVOKED,
            cause=Cause.new(),
            reason="revoke confirmed by okta",
        )


async def test_ttl_expiry_moves_to_revoking_and_issues_one_command(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    ctx = context(pool, clock, topics, policy(sla=timedelta(minutes=15)))
    key = fresh_key()
    await seed(pool, key, clock, topics, expires_at=T0 + timedelta(seconds=2), owner="okta:user:boss@example.com")

    assert await drain(ctx, expire_entitlements) == 0
    clock.advance(seconds=2)
    assert await drain(ctx, expire_entitlements) == 1
    assert await drain(ctx, expire_entitlements) == 0  # idempotent: nothing left to do

    record = await record_of(pool, key)
    assert record.status is EntitlementStatus.REVOKING
    assert record.last_change is EntitlementChange.EXPIRED
    assert record.revoke_requested_at == clock.now()
    assert record.revoke_confirm_by == clock.now() + timedelta(minutes=15)
    sent = [c for c in await commands(pool, topics) if c.key == key]
    assert len(sent) == 1
    command = sent[0]
    assert command.action is CommandAction.REVOKE
    assert command.reason is RevocationTrigger.EXPIRY
    assert command.confirm_by == clock.now() + timedelta(minutes=15)
    assert command.attempt == 1
    assert command.target_system == "okta"
    assert await changes(pool, topics, key) == [
        EntitlementChange.REQUESTED,
        EntitlementChange.ACTIVATED,
        EntitlementChange.EXPIRED,
    ]


async def test_pending_entitlement_past_expiry_is_revoked_too(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    ctx = context(pool, clock, topics)
    key = fresh_key()
    await seed(pool, key, clock, topics, status=EntitlementStatus.PENDING, expires_at=T0 + timedelta(hours=1))
    clock.advance(hours=2)
    await drain(ctx, expire_entitlements)
    assert (await record_of(pool, key)).status is EntitlementStatus.REVOKING
    assert len([c for c in await commands(pool, topics) if c.key == key]) == 1


async def test_owner_notices_at_each_offset_exactly_once(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    ctx = context(pool, clock, topics, policy(offsets=(timedelta(days=7), timedelta(days=1))))
    key = fresh_key()
    expires = T0 + timedelta(days=10)
    await seed(pool, key, clock, topics, expires_at=expires, owner="okta:user:owner@example.com")

    for at in (expires - timedelta(days=8), expires - timedelta(days=7), expires - timedelta(days=6)):
        clock.set(at)
        await drain(ctx, send_expiry_notices)
    clock.set(expires - timedelta(hours=23))
    await drain(ctx, send_expiry_notices)
    await drain(ctx, send_expiry_notices)
    clock.set(expires)
    await drain(ctx, send_expiry_notices)
    await drain(ctx, expire_entitlements)

    assert await changes(pool, topics, key) == [
        EntitlementChange.REQUESTED,
        EntitlementChange.ACTIVATED,
        EntitlementChange.EXPIRY_NOTICE,
        EntitlementChange.EXPIRY_NOTICE,
        EntitlementChange.EXPIRED,
    ]
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT offset_s, outcome FROM expiry_notices WHERE entitlement_key = $1 ORDER BY offset_s DESC", str(key)
        )
    assert [(r["offset_s"], r["outcome"]) for r in rows] == [(7 * 86400, "sent"), (86400, "sent")]


async def test_after_downtime_only_the_nearest_notice_is_sent(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0 - timedelta(days=30)), unique_topics()
    ctx = context(pool, clock, topics)
    key = fresh_key()
    await seed(pool, key, clock, topics, expires_at=T0 + timedelta(hours=12))
    clock.set(T0)  # no sweep ran in between (downtime)
    await drain(ctx, send_expiry_notices)
    events = [c for c in await changes(pool, topics, key) if c is EntitlementChange.EXPIRY_NOTICE]
    assert len(events) == 1
    record = await record_of(pool, key)
    assert record.reason is not None
    assert "(1d notice)" in record.reason
    async with pool.acquire() as conn:
        outcomes = dict(
            await conn.fetch("SELECT offset_s, outcome FROM expiry_notices WHERE entitlement_key = $1", str(key))
        )
    assert outcomes == {7 * 86400: "superseded", 86400: "sent"}


async def test_a_new_expiry_date_gets_its_own_notices(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0 - timedelta(days=2)), unique_topics()
    ctx = context(pool, clock, topics, policy(offsets=(timedelta(days=1),)))
    key = fresh_key()
    await seed(pool, key, clock, topics, expires_at=T0 + timedelta(hours=20))
    clock.set(T0)
    await drain(ctx, send_expiry_notices)
    async with record_transaction(pool, actor="provisioning", topics=topics, clock=clock.now) as tx:
        locked = await tx.lock(key)
        assert locked is not None
        await tx.apply(
            locked,
            locked.evolve(expires_at=T0 + timedelta(days=30)),
            change=EntitlementChange.RENEWED,
            cause=Cause.new(),
        )
    clock.set(T0 + timedelta(days=29, hours=1))
    await drain(ctx, send_expiry_notices)
    notices = [c for c in await changes(pool, topics, key) if c is EntitlementChange.EXPIRY_NOTICE]
    assert len(notices) == 2


async def test_unconfirmed_revoke_raises_once_and_is_resent_with_backoff(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    sla = timedelta(minutes=10)
    ctx = context(
        pool,
        clock,
        topics,
        policy(sla=sla, retry_initial=timedelta(minutes=1), retry_max=timedelta(minutes=10), max_attempts=3),
    )
    key = fresh_key()
    await seed(pool, key, clock, topics, expires_at=T0 + timedelta(seconds=1))
    clock.advance(seconds=1)
    await drain(ctx, expire_entitlements)
    deadline = (await record_of(pool, key)).revoke_confirm_by
    assert deadline == clock.now() + sla

    clock.set(deadline - timedelta(microseconds=1))
    assert await drain(ctx, check_revoke_confirmations) == 0
    clock.set(deadline)
    assert await drain(ctx, check_revoke_confirmations) == 1
    assert await drain(ctx, check_revoke_confirmations) == 0
    assert (await record_of(pool, key)).last_change is EntitlementChange.REVOKE_UNCONFIRMED
    assert len(await commands(pool, topics)) == 1

    clock.advance(minutes=1)  # first backoff step: attempt 2 goes out
    assert await drain(ctx, check_revoke_confirmations) == 1
    sent = await commands(pool, topics)
    assert [c.attempt for c in sent] == [1, 2]
    assert sent[0].command_id == sent[1].command_id
    assert sent[1].confirm_by == clock.now() + sla
    assert sent[0].event_id != sent[1].event_id

    clock.advance(sla + timedelta(minutes=1))  # attempt 2's deadline plus one minute: not yet (2 min backoff)
    assert await drain(ctx, check_revoke_confirmations) == 0
    clock.advance(minutes=1)
    await drain(ctx, check_revoke_confirmations)
    assert [c.attempt for c in await commands(pool, topics)] == [1, 2, 3]

    clock.advance(days=2)  # attempts used up: no more resends, and the alert is not raised again
    await drain(ctx, check_revoke_confirmations)
    assert [c.attempt for c in await commands(pool, topics)] == [1, 2, 3]
    assert (await changes(pool, topics, key)).count(EntitlementChange.REVOKE_UNCONFIRMED) == 1
    async with pool.acquire() as conn:
        issued = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE entity_key = $1 AND action = 'revoke_issued'", str(key)
        )
    assert issued == 3  # every attempt is in the audit log


async def test_a_ttl_revoke_on_a_manual_system_gets_the_manual_window_not_the_api_one(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    ctx = context(pool, clock, topics, policy(sla=timedelta(minutes=15)))  # API executors: 15 minutes
    api, manual = fresh_key("api"), key_for(fresh_key("manual").principal, "vault:policy:prod-read", "attached")
    for key in (api, manual):
        await seed(pool, key, clock, topics, expires_at=T0 + timedelta(seconds=1))
    clock.advance(seconds=1)
    assert await drain(ctx, expire_entitlements) == 2
    assert (await record_of(pool, api)).revoke_confirm_by == clock.now() + timedelta(minutes=15)
    assert (await record_of(pool, manual)).revoke_confirm_by == clock.now() + timedelta(days=3)
    (command,) = [c for c in await commands(pool, topics) if c.key == manual]
    assert command.confirm_by == clock.now() + timedelta(days=3)

    clock.advance(minutes=16)  # the API revoke is overdue; the person working the manual queue is not
    await drain(ctx, check_revoke_confirmations)
    assert EntitlementChange.REVOKE_UNCONFIRMED in await changes(pool, topics, api)
    assert EntitlementChange.REVOKE_UNCONFIRMED not in await changes(pool, topics, manual)
    clock.advance(days=3)
    await drain(ctx, check_revoke_confirmations)
    assert EntitlementChange.REVOKE_UNCONFIRMED in await changes(pool, topics, manual)


async def test_confirmed_revoke_raises_nothing(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    ctx = context(pool, clock, topics, policy(sla=timedelta(minutes=5)))
    key = fresh_key()
    await seed(pool, key, clock, topics, expires_at=T0)
    await drain(ctx, expire_entitlements)
    clock.advance(minutes=1)
    await confirm_at_source(pool, key, clock, topics)
    clock.advance(hours=1)
    assert await drain(ctx, check_revoke_confirmations) == 0
    assert EntitlementChange.REVOKE_UNCONFIRMED not in await changes(pool, topics, key)
    assert len(await commands(pool, topics)) == 1


async def test_break_glass_window_end_revokes_and_outliving_the_sla_ends_the_exception(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    sla = timedelta(minutes=5)
    ctx = context(pool, clock, topics, policy(sla=sla))
    key = fresh_key("oncall")
    window_end = T0 + timedelta(hours=4)
    await seed(pool, key, clock, topics, exception_window_end=window_end, expires_at=T0 + timedelta(days=1))
    clock.set(window_end)
    assert await drain(ctx, end_exceptions) == 1
    sent = await commands(pool, topics)
    assert [c.reason for c in sent] == [RevocationTrigger.EXCEPTION_WINDOW_END]
    assert (await changes(pool, topics, key))[-1] is EntitlementChange.REVOKE_REQUESTED
    clock.advance(sla)
    await drain(ctx, check_revoke_confirmations)
    assert (await changes(pool, topics, key))[-2:] == [
        EntitlementChange.REVOKE_UNCONFIRMED,
        EntitlementChange.EXCEPTION_ENDED,
    ]
    clock.advance(minutes=1)
    await drain(ctx, check_revoke_confirmations)
    assert (await changes(pool, topics, key)).count(EntitlementChange.EXCEPTION_ENDED) == 1


async def test_expiry_at_the_window_end_counts_as_the_exception_ending(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    ctx = context(pool, clock, topics)
    key = fresh_key("oncall")
    end = T0 + timedelta(hours=1)
    await seed(pool, key, clock, topics, exception_window_end=end, expires_at=end)
    clock.set(end)
    await drain(ctx, expire_entitlements)
    assert [c.reason for c in await commands(pool, topics)] == [RevocationTrigger.EXCEPTION_WINDOW_END]


async def test_recertification_due_overdue_then_policy_revoke(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    recert = RecertPolicy(
        interval_human=None,
        interval_nhi=timedelta(days=90),
        due_lead=timedelta(days=14),
        overdue_grace=timedelta(days=1),
        revoke_after=timedelta(days=30),
    )
    ctx = context(pool, clock, topics, policy(recert=recert))
    nhi = fresh_key("ci-bot")
    human = fresh_key("human")
    await seed(pool, nhi, clock, topics, principal_kind=IdentityKind.SERVICE_ACCOUNT, owner="okta:user:o@example.com")
    await seed(pool, human, clock, topics, principal_kind=IdentityKind.HUMAN)
    due = T0 + timedelta(days=90)

    clock.set(due - timedelta(days=15))
    assert await drain(ctx, enforce_recertification) == 0
    clock.set(due - timedelta(days=14))
    assert await drain(ctx, enforce_recertification) == 1
    assert await drain(ctx, enforce_recertification) == 0
    record = await record_of(pool, nhi)
    assert record.last_change is EntitlementChange.RECERTIFICATION_DUE
    assert record.recertification_due_at == due
    assert record.recertification_interval == timedelta(days=90)
    clock.set(due + timedelta(hours=23))
    assert await drain(ctx, enforce_recertification) == 0
    clock.set(due + timedelta(days=1))
    assert await drain(ctx, enforce_recertification) == 1
    assert (await record_of(pool, nhi)).last_change is EntitlementChange.RECERTIFICATION_OVERDUE
    clock.set(due + timedelta(days=30))
    assert await drain(ctx, enforce_recertification) == 1
    assert [(c.key, c.reason) for c in await commands(pool, topics)] == [(nhi, RevocationTrigger.RECERTIFICATION)]
    assert (await record_of(pool, nhi)).status is EntitlementStatus.REVOKING
    # Humans need no recertification under this policy.
    assert await changes(pool, topics, human) == [EntitlementChange.REQUESTED, EntitlementChange.ACTIVATED]


async def test_catch_up_after_downtime_revokes_everything_that_expired(
    pool: asyncpg.Pool, owner: asyncpg.Connection
) -> None:
    clock, topics = FakeClock(T0), unique_topics()
    keys = [fresh_key(f"bulk{i}") for i in range(250)]
    await bulk_seed(owner, keys, expires_at=T0 - timedelta(days=3), created_at=T0 - timedelta(days=30))
    sweeper = Sweeper(context(pool, clock, topics, policy(batch_size=100)), interval_s=1)
    report = await sweeper.sweep_once()
    assert report.actions["expire"] >= 250
    sent = [c for c in await commands(pool, topics) if c.key in set(keys)]
    assert len(sent) == 250
    assert len({c.key for c in sent}) == 250
    assert len({c.command_id for c in sent}) == 250


async def test_dry_run_plans_what_the_sweep_then_does(pool: asyncpg.Pool) -> None:
    clock, topics = FakeClock(T0 - timedelta(days=10)), unique_topics()
    ctx = context(pool, clock, topics)
    expired, noticed = fresh_key("exp"), fresh_key("soon")
    await seed(pool, expired, clock, topics, expires_at=T0 + timedelta(minutes=1))
    await seed(pool, noticed, clock, topics, expires_at=T0 + timedelta(days=3))
    clock.set(T0 + timedelta(minutes=2))
    async with pool.acquire() as conn:
        plans = {p.phase: p for p in await plan_sweep(conn, ctx.policy, clock.now())}
    assert any(str(expired) in s for s in plans["expire+exceptions"].sample)
    assert any(str(noticed) in s for s in plans["notices"].sample)
    assert await changes(pool, topics, expired) == [EntitlementChange.REQUESTED, EntitlementChange.ACTIVATED]
    await Sweeper(ctx, interval_s=1).sweep_once()
    assert EntitlementChange.EXPIRED in await changes(pool, topics, expired)
    assert EntitlementChange.EXPIRY_NOTICE in await changes(pool, topics, noticed)
    async with pool.acquire() as conn:
        assert await repository.load(conn, noticed) is not None
