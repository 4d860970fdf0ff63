"""Test helpers: seed entitlements the way provisioning does (through the record library), bulk rows with
COPY, read what went to the outbox, and build an expiry context on a fake clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from closeloop.contracts.codec import decode
from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementChange, EntitlementEvent, EntitlementStatus, TicketRef
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.record import Cause, ConfirmationPolicy, EntitlementRecord, RecordTopics, record_transaction
from closeloop.record.bulk import copy_active_entitlements
from expiry.backoff import RetrySchedule
from expiry.clock import FakeClock
from expiry.context import ExpiryContext, ExpiryPolicy
from expiry.metrics import ExpiryMetrics
from expiry.recertification import RecertPolicy

ACCESS_TICKET = TicketRef(system="servicenow", ticket_id="sys-1", ticket_number="RITM0010001", kind="access_request")


def unique_topics() -> RecordTopics:
    tag = uuid.uuid4().hex[:8]
    return RecordTopics(
        entitlements=f"test.entitlements.{tag}", commands=f"test.commands.{tag}", grants=f"test.grants.{tag}"
    )


def key_for(principal: str, resource: str = "okta:group:00g1engadmins", privilege: str = "member") -> EntitlementKey:
    return EntitlementKey(principal=principal, resource=resource, privilege=privilege)


def fresh_key(tag: str = "user") -> EntitlementKey:
    return key_for(f"okta:user:{tag}-{uuid.uuid4().hex[:8]}@example.com")


def policy(
    *,
    sla: timedelta = timedelta(minutes=15),
    offsets: tuple[timedelta, ...] = (timedelta(days=7), timedelta(days=1)),
    retry_initial: timedelta = timedelta(minutes=1),
    retry_max: timedelta = timedelta(minutes=10),
    max_attempts: int = 4,
    recert: RecertPolicy | None = None,
    batch_size: int = 100,
) -> ExpiryPolicy:
    return ExpiryPolicy(
        confirmation=ConfirmationPolicy(grant_within=sla, revoke_within=sla),
        notice_offsets=offsets,
        retries=RetrySchedule(initial=retry_initial, factor=2.0, maximum=retry_max, max_attempts=max_attempts),
        recert=recert
        or RecertPolicy(
            interval_human=None,
            interval_nhi=None,
            due_lead=timedelta(days=14),
            overdue_grace=timedelta(0),
            revoke_after=None,
        ),
        batch_size=batch_size,
    )


def context(
    pool: asyncpg.Pool, clock: FakeClock, topics: RecordTopics, expiry_policy: ExpiryPolicy | None = None
) -> ExpiryContext:
    return ExpiryContext(
        pool=pool, policy=expiry_policy or policy(), topics=topics, clock=clock, metrics=ExpiryMetrics()
    )


async def seed(
    pool: asyncpg.Pool,
    key: EntitlementKey,
    clock: FakeClock,
    topics: RecordTopics,
    *,
    status: EntitlementStatus = EntitlementStatus.ACTIVE,
    **fields: Any,
) -> EntitlementRecord:
    """Create an entitlement as provisioning would: requested (pending), then activated."""
    cause = Cause.new()
    fields.setdefault("tickets", (ACCESS_TICKET,))
    async with record_transaction(pool, actor="provisioning", topics=topics, clock=clock.now) as tx:
        pending = await tx.apply(
            None,
            EntitlementRecord.new(key, status=EntitlementStatus.PENDING, **fields),
            change=EntitlementChange.REQUESTED,
            cause=cause,
        )
        if status is EntitlementStatus.PENDING:
            return pending
        return await tx.apply(
            pending,
            pending.evolve(status=status, granted_at=clock.now(), verified_at=clock.now()),
            change=EntitlementChange.ACTIVATED,
            cause=cause,
        )


async def bulk_seed(
    owner: asyncpg.Connection,
    keys: Sequence[EntitlementKey],
    *,
    expires_at: datetime,
    created_at: datetime,
    kind: IdentityKind = IdentityKind.HUMAN,
) -> None:
    """Insert active entitlements in one COPY (as the schema owner), for volume tests."""
    await copy_active_entitlements(
        owner, keys, expires_at=expires_at, created_at=created_at, kind=kind, tickets=(ACCESS_TICKET,)
    )


async def outbox(conn: asyncpg.Connection | asyncpg.Pool, topic: str) -> list[Any]:
    """Decoded events waiting in the outbox for `topic`, in order."""
    rows = await conn.fetch("SELECT value FROM outbox WHERE topic = $1 ORDER BY id", topic)
    return [decode(bytes(r["value"])) for r in rows]


async def commands(conn: asyncpg.Connection | asyncpg.Pool, topics: RecordTopics) -> list[ProvisioningCommand]:
    return [c for c in await outbox(conn, topics.commands) if isinstance(c, ProvisioningCommand)]


async def changes(
    conn: asyncpg.Connection | asyncpg.Pool, topics: RecordTopics, key: EntitlementKey | None = None
) -> list[EntitlementChange]:
    events = [e for e in await outbox(conn, topics.entitlements) if isinstance(e, EntitlementEvent)]
    return [e.change for e in events if key is None or e.key == key]


async def record_of(pool: asyncpg.Pool, key: EntitlementKey) -> EntitlementRecord:
    from closeloop.record import repository

    async with pool.acquire() as conn:
        found = await repository.load(conn, key)
    assert found is not None
    return found


def by_key(items: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for item in items:
        grouped.setdefault(str(item.key), []).append(item)
    return grouped
