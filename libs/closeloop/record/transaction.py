"""Writing the record: one PostgreSQL transaction per unit of work.

A `RecordTransaction` is the only way the entitlement record changes. Within one transaction it

* claims the input event id in `processed_events` (a duplicate delivery is then a no-op),
* writes the entitlement row (guarded by its version, so a lost update is impossible),
* puts the `EntitlementEvent` (and any `ProvisioningCommand`) in the outbox,
* appends one hash-chained audit row per change, at commit time under the chain-head lock.

Either all of it commits or none of it does, so killing the process at any point loses nothing and
applies nothing twice. Usage::

    async with record_transaction(pool, actor="expiry", topics=topics) as tx:
        if not await tx.claim("expiry", event.event_id):
            return  # already applied
        record = await tx.lock(key)
        stored = await tx.apply(record, record.evolve(status=EntitlementStatus.REVOKING, ...),
                                change=EntitlementChange.EXPIRED, reason="...", cause=cause)
        await tx.issue(stored.command(CommandAction.REVOKE, RevocationTrigger.EXPIRY, cause=cause, actor="expiry"))
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from types import TracebackType
from typing import Any

import asyncpg
from asyncpg.transaction import Transaction

from closeloop.contracts.base import Envelope, utcnow
from closeloop.contracts.codec import cloudevents_headers, encode, kafka_key
from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementChange, EntitlementEvent
from closeloop.contracts.grants import PrincipalStatus
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.identity.store import link_groups
from closeloop.outbox import CHANNEL
from closeloop.record import repository
from closeloop.record.audit import AuditEntry, AuditRow, append_entries
from closeloop.record.models import (
    Cause,
    EntitlementRecord,
    ExceptionGrant,
    IdentityRecord,
    ObservedGrant,
    RecertificationEvidence,
    RecordTopics,
)
from closeloop.record.moves import InvalidTransition, check_move, recertification_due
from closeloop.record.rows import INSERT_SQL, UPDATE_MANY_SQL, UPDATE_SQL, row_params, update_many_params

Clock = Callable[[], datetime]


class ConcurrentModification(asyncpg.exceptions.SerializationError):  # type: ignore[misc]
    """The row changed since it was read (read it with `lock` to avoid this). Transient: retry the unit."""


@dataclass(frozen=True)
class RecordChange:
    """One entitlement change for `RecordTransaction.apply_many` (the arguments of `apply`)."""

    before: EntitlementRecord | None
    after: EntitlementRecord
    change: EntitlementChange
    cause: Cause
    reason: str | None = None


class _Keep(Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP
"""Sentinel for `upsert_identity`: leave this field as it is."""


class RecordTransaction:
    """A unit of work on the record; use `record_transaction(...)` or `async with RecordTransaction(conn, ...)`."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        *,
        actor: str,
        topics: RecordTopics | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.conn = conn
        self.actor = actor
        self.topics = topics or RecordTopics()
        self._clock = clock
        self._tx: Transaction | None = None
        self._audit: list[AuditEntry] = []
        self._outbox: list[tuple[str, bytes | None, bytes, str]] = []
        self.events: list[EntitlementEvent] = []
        self.commands: list[ProvisioningCommand] = []
        self.audit_rows: list[AuditRow] = []

    # -- transaction -------------------------------------------------------------------------------

    async def __aenter__(self) -> RecordTransaction:
        self._tx = self.conn.transaction()
        await self._tx.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tx is not None  # noqa: S101 - __aenter__ ran
        if exc_type is not None:
            await self._tx.rollback()
            return
        try:
            await self._flush_outbox()
            self.audit_rows = await append_entries(self.conn, self._audit)
        except BaseException:
            await self._tx.rollback()
            raise
        await self._tx.commit()

    def now(self) -> datetime:
        return self._clock()

    def enqueue(self, topic: str, event: Envelope) -> None:
        """Put an event in the outbox (written with the rest of this transaction, in call order)."""
        headers = json.dumps([[k, v.decode()] for k, v in cloudevents_headers(event)])
        self._outbox.append((topic, kafka_key(event), encode(event), headers))

    async def _flush_outbox(self) -> None:
        # One COPY and one NOTIFY per transaction instead of two round trips per event; the rows keep
        # the format closeloop.outbox.enqueue writes, so OutboxRelay publishes them unchanged.
        if not self._outbox:
            return
        await self.conn.copy_records_to_table(
            "outbox", columns=("topic", "key", "value", "headers"), records=self._outbox
        )
        await self.conn.execute("SELECT pg_notify($1, '')", CHANNEL)
        self._outbox = []

    # -- inputs ------------------------------------------------------------------------------------

    async def claim(self, consumer: str, event_id: str) -> bool:
        """Record that `consumer` applied `event_id`; False if it already had (skip the input then)."""
        inserted = await self.conn.fetchval(
            "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
            consumer,
            event_id,
        )
        return inserted is not None

    async def claim_many(self, consumer: str, event_ids: Iterable[str]) -> set[str]:
        """Claim several input ids in one round trip; returns the ones not applied before."""
        rows = await self.conn.fetch(
            "INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::text[])"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            consumer,
            list(dict.fromkeys(event_ids)),
        )
        return {r["event_id"] for r in rows}

    # -- reads (within this transaction) -----------------------------------------------------------

    async def load(self, key: EntitlementKey | str) -> EntitlementRecord | None:
        return await repository.load(self.conn, key)

    async def lock(self, key: EntitlementKey | str) -> EntitlementRecord | None:
        return await repository.lock(self.conn, key)

    async def lock_many(self, keys: Iterable[EntitlementKey | str]) -> dict[str, EntitlementRecord]:
        return await repository.lock_many(self.conn, keys)

    async def load_identity(self, principal: str, *, for_update: bool = False) -> IdentityRecord | None:
        return await repository.load_identity(self.conn, principal, for_update=for_update)

    # -- entitlement changes -----------------------------------------------------------------------

    async def apply(
        self,
        before: EntitlementRecord | None,
        after: EntitlementRecord,
        *,
        change: EntitlementChange,
        cause: Cause,
        reason: str | None = None,
    ) -> EntitlementRecord:
        """Store `after` as the next version of `before` (None: a new entitlement), announce it, audit it.

        Returns the stored record (version, change, reason and times stamped); build commands from it.
        """
        [stored] = await self.apply_many([RecordChange(before, after, change, cause, reason)])
        return stored

    async def apply_many(self, changes: Sequence[RecordChange]) -> list[EntitlementRecord]:
        """`apply` for several entitlements (one change each): the updates in one statement, each still
        guarded by its version (any stale one fails the whole transaction). Returns the stored records."""
        stored = [self._stamp(c) for c in changes]
        if len({str(s.key) for s in stored}) != len(stored):
            raise InvalidTransition("a batch holds at most one change per entitlement")
        for c, record in zip(changes, stored, strict=True):
            if c.before is None and await self.conn.fetchval(INSERT_SQL, *row_params(record)) is None:
                raise ConcurrentModification(f"entitlement {record.key} changed concurrently")
        updates = [record for c, record in zip(changes, stored, strict=True) if c.before is not None]
        written: set[str] = set()
        if len(updates) == 1:
            params = row_params(updates[0])
            if await self.conn.fetchval(UPDATE_SQL, *params[:23], params[24]) is not None:
                written.add(params[0])
        elif updates:
            written = {r["key"] for r in await self.conn.fetch(UPDATE_MANY_SQL, *update_many_params(updates))}
        stale = [str(r.key) for r in updates if str(r.key) not in written]
        if stale:
            raise ConcurrentModification(f"entitlement {stale[0]} changed concurrently")
        for c, record in zip(changes, stored, strict=True):
            self._announce(record, c)
        return stored

    def _stamp(self, c: RecordChange) -> EntitlementRecord:
        """`c.after` as the next version of `c.before`: version, change, reason and times stamped."""
        before, after = c.before, c.after
        if before is not None and before.key != after.key:
            raise InvalidTransition("before and after must be the same entitlement")
        check_move(before.status if before else None, after.status)
        now = self.now()
        if before is not None and before.updated_at is not None and now <= before.updated_at:
            now = before.updated_at + timedelta(microseconds=1)  # keep each record's history in time order
        stored = after.evolve(
            version=(before.version if before else 0) + 1,
            last_change=c.change,
            reason=c.reason,
            created_at=before.created_at if before else now,
            updated_at=now,
        )
        if before is None or stored.recertification_due_at == before.recertification_due_at:
            # A value computed from the validated record: no second validation round needed.
            stored = stored.model_copy(update={"recertification_due_at": recertification_due(stored)})
        return stored

    def _announce(self, stored: EntitlementRecord, c: RecordChange) -> None:
        event = stored.to_event(c.cause, self.actor)
        self.enqueue(self.topics.entitlements, event)
        self.events.append(event)
        self._audit.append(
            AuditEntry(
                recorded_at=stored.updated_at or self.now(),
                entity_type="entitlement",
                entity_key=str(stored.key),
                action=c.change.value,
                actor=self.actor,
                cause_event_id=c.cause.event_id,
                correlation_id=c.cause.correlation_id,
                payload={"event_id": event.event_id, "record": stored.model_dump(mode="json")},
            )
        )

    async def issue(self, command: ProvisioningCommand, *, cause: Cause) -> None:
        """Send a provisioning command (through the outbox) and audit that it was issued."""
        self.enqueue(self.topics.commands, command)
        self.commands.append(command)
        self.audit(
            entity_type="command",
            entity_key=str(command.key),
            action=f"{command.action.value}_issued",
            payload=command.model_dump(mode="json"),
            cause=cause,
        )

    def audit(self, *, entity_type: str, entity_key: str, action: str, payload: dict[str, Any], cause: Cause) -> None:
        """Add an audit row to this transaction (appended to the chain at commit)."""
        self._audit.append(
            AuditEntry(
                recorded_at=self.now(),
                entity_type=entity_type,
                entity_key=entity_key,
                action=action,
                actor=self.actor,
                cause_event_id=cause.event_id,
                correlation_id=cause.correlation_id,
                payload=payload,
            )
        )

    # -- evidence ----------------------------------------------------------------------------------

    async def record_exception(self, grant: ExceptionGrant, *, cause: Cause) -> bool:
        """Store a break-glass exception (once per entitlement and ticket); True if it was new."""
        inserted = await self.conn.fetchval(
            "INSERT INTO entitlement_exceptions (entitlement_key, reason, incident_ticket, ticket, window_start,"
            " window_end, reviewer) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)"
            " ON CONFLICT (entitlement_key, ticket) DO NOTHING RETURNING id",
            grant.entitlement_key,
            grant.reason,
            grant.incident_ticket,
            json.dumps(grant.ticket.model_dump(mode="json")),
            grant.window_start,
            grant.window_end,
            grant.reviewer,
        )
        if inserted is None:
            return False
        self.audit(
            entity_type="exception",
            entity_key=grant.entitlement_key,
            action="exception_recorded",
            payload=grant.model_dump(mode="json"),
            cause=cause,
        )
        return True

    async def record_recertification(self, evidence: RecertificationEvidence, *, cause: Cause) -> None:
        """Store a recertification decision (the evidence auditors ask for) and audit it."""
        await self.conn.execute(
            "INSERT INTO recertifications (entitlement_key, decision, reviewer, decided_at, ticket, notes)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
            evidence.entitlement_key,
            evidence.decision,
            evidence.reviewer,
            evidence.decided_at,
            json.dumps(evidence.ticket.model_dump(mode="json")) if evidence.ticket else None,
            evidence.notes,
        )
        self.audit(
            entity_type="recertification",
            entity_key=evidence.entitlement_key,
            action=f"recertification_{evidence.decision}",
            payload=evidence.model_dump(mode="json"),
            cause=cause,
        )

    # -- identities --------------------------------------------------------------------------------

    async def upsert_identity(
        self,
        principal: str,
        *,
        cause: Cause,
        kind: IdentityKind | _Keep = KEEP,
        status: PrincipalStatus | _Keep = KEEP,
        owner: str | _Keep | None = KEEP,
        display_name: str | _Keep | None = KEEP,
        source_system: str | _Keep | None = KEEP,
        status_changed_at: datetime | None = None,
        aliases: Iterable[str] = (),
    ) -> IdentityRecord:
        """Create or update an identity; audited when anything changed. An `unknown` kind never
        overwrites a known one, and aliases are only ever added."""
        current = await repository.load_identity(self.conn, principal, for_update=True)
        base = current or IdentityRecord(principal=principal)
        values = base.model_dump()
        if not isinstance(kind, _Keep) and (kind is not IdentityKind.UNKNOWN or current is None):
            values["kind"] = kind
        if not isinstance(status, _Keep) and status != base.status:
            values["status"] = status
            values["status_changed_at"] = status_changed_at or self.now()
        for field, value in (("owner", owner), ("display_name", display_name), ("source_system", source_system)):
            if not isinstance(value, _Keep):
                values[field] = value
        new_aliases = sorted({a for a in aliases if a and a != principal} - set(base.aliases))
        values["aliases"] = tuple(sorted({*base.aliases, *new_aliases}))
        updated = IdentityRecord.model_validate(values)
        if current is not None and updated == current:
            return current
        now = self.now()
        updated = IdentityRecord.model_validate(
            {
                **updated.model_dump(),
                "version": base.version + 1,
                "created_at": base.created_at or now,
                "updated_at": now,
            }
        )
        await self.conn.execute(
            "INSERT INTO identities (principal, kind, status, owner, display_name, source_system, status_changed_at,"
            " version, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
            " ON CONFLICT (principal) DO UPDATE SET kind=$2, status=$3, owner=$4, display_name=$5, source_system=$6,"
            " status_changed_at=$7, version=$8, updated_at=$10",
            updated.principal,
            updated.kind.value,
            updated.status.value,
            updated.owner,
            updated.display_name,
            updated.source_system,
            updated.status_changed_at,
            updated.version,
            updated.created_at,
            updated.updated_at,
        )
        if new_aliases:
            # One identity graph for every service: names seen together never merge two known identities.
            await link_groups(self.conn, [(principal, new_aliases)], updated.source_system or "record")
        self.audit(
            entity_type="identity",
            entity_key=principal,
            action="identity_created" if current is None else "identity_updated",
            payload=updated.model_dump(mode="json"),
            cause=cause,
        )
        return updated

    # -- observations ------------------------------------------------------------------------------

    async def observe_grant(
        self,
        key: EntitlementKey,
        *,
        live: bool,
        source_system: str,
        observed_at: datetime,
        vendor_event_id: str,
        command_id: str | None = None,
    ) -> bool:
        """Remember the latest grant state a source reported for `key`; False if this report is older."""
        newer = await self.conn.fetchval(
            "INSERT INTO observed_grants (key, live, source_system, observed_at, vendor_event_id, command_id)"
            " VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (key) DO UPDATE SET live = EXCLUDED.live, source_system = EXCLUDED.source_system,"
            " observed_at = EXCLUDED.observed_at, vendor_event_id = EXCLUDED.vendor_event_id,"
            " command_id = EXCLUDED.command_id, updated_at = now()"
            " WHERE observed_grants.observed_at <= EXCLUDED.observed_at RETURNING 1",
            str(key),
            live,
            source_system,
            observed_at,
            vendor_event_id,
            command_id,
        )
        return newer is not None

    async def observed_live(self, key: EntitlementKey) -> bool:
        """True when the latest report from the source says the grant is live."""
        observed = await self.observed(key)
        return observed is not None and observed.live

    async def observed(self, key: EntitlementKey) -> ObservedGrant | None:
        """The latest grant state a source reported for `key`, if any."""
        return await repository.load_observed(self.conn, key)


@asynccontextmanager
async def record_transaction(
    pool: asyncpg.Pool, *, actor: str, topics: RecordTopics | None = None, clock: Clock = utcnow
) -> AsyncIterator[RecordTransaction]:
    """Acquire a connection and run one `RecordTransaction` on it."""
    async with pool.acquire() as conn, RecordTransaction(conn, actor=actor, topics=topics, clock=clock) as tx:
        yield tx
