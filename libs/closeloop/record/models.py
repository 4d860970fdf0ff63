"""The entitlement record as Python values: what a row says, and what an event about it carries.

`EntitlementRecord` mirrors one row of `entitlements`. It is immutable; a change is a new record built
with `evolve(...)` and written by `RecordTransaction.apply`, which also stamps the version, the change
and the time. Event and command ids derive from (key, version), so replaying the same change can never
mint a second, different event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from closeloop.contracts.base import StrictModel, new_event_id
from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import (
    EntitlementChange,
    EntitlementEvent,
    EntitlementStatus,
    RevocationTrigger,
    TicketRef,
)
from closeloop.contracts.grants import PrincipalStatus
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.topics import ENTITLEMENTS, IAM_GRANTS, PROVISIONING_COMMANDS

# Namespace of every id closeloop derives from record versions (uuid5).
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://closeloop.dev/record")

LIVE_STATUSES: tuple[EntitlementStatus, ...] = (
    EntitlementStatus.PENDING,
    EntitlementStatus.ACTIVE,
    EntitlementStatus.REVOKING,
)
"""Statuses in which the entitlement is, or may be, held at the source."""

REVOCABLE_STATUSES: tuple[EntitlementStatus, ...] = (EntitlementStatus.PENDING, EntitlementStatus.ACTIVE)
"""Statuses a new revoke starts from (a revoking record already has one in flight)."""

HELD_STATUSES: tuple[EntitlementStatus, ...] = (EntitlementStatus.ACTIVE, EntitlementStatus.REVOKING)
"""Statuses in which the record says the entitlement is held (granted and not yet confirmed removed)."""


def derived_id(*parts: str) -> str:
    """A stable uuid for the given parts: the same change always gets the same id."""
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)))


@dataclass(frozen=True)
class Cause:
    """What caused a change: the input event (for tracing and the audit log) and its correlation id."""

    correlation_id: str
    event_id: str | None = None

    @classmethod
    def new(cls) -> Cause:
        """A cause with a fresh correlation id, for changes no input event caused (sweeps, operators)."""
        return cls(correlation_id=new_event_id())


@dataclass(frozen=True)
class RecordTopics:
    """Where the outbox sends record events and commands (tests use unique names)."""

    entitlements: str = ENTITLEMENTS
    commands: str = PROVISIONING_COMMANDS
    grants: str = IAM_GRANTS


class EntitlementRecord(StrictModel):
    """One entitlement's current state (a row of `entitlements`)."""

    key: EntitlementKey
    status: EntitlementStatus
    last_change: EntitlementChange = EntitlementChange.REQUESTED
    reason: str | None = None
    source_system: str = Field(min_length=1, max_length=50)
    principal_kind: IdentityKind = IdentityKind.UNKNOWN
    owner: str | None = None
    tickets: tuple[TicketRef, ...] = ()
    granted_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    revocation_triggers: tuple[RevocationTrigger, ...] = ()
    project: str | None = None
    verified_at: AwareDatetime | None = None
    last_recertified_at: AwareDatetime | None = None
    recertification_interval: timedelta | None = None
    recertification_due_at: AwareDatetime | None = None
    exception_window_end: AwareDatetime | None = None
    revoke_requested_at: AwareDatetime | None = None
    revoke_confirm_by: AwareDatetime | None = None
    version: int = Field(default=0, ge=0, description="0 until first stored; +1 per change.")
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None

    @classmethod
    def new(
        cls, key: EntitlementKey, *, status: EntitlementStatus, source_system: str | None = None, **fields: Any
    ) -> EntitlementRecord:
        return cls(key=key, status=status, source_system=source_system or key.system, **fields)

    def evolve(self, **changes: Any) -> EntitlementRecord:
        """A copy with `changes` applied and validated (model_copy alone would not validate)."""
        return type(self).model_validate({**self.model_dump(), **changes})

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def approving_ticket(self) -> TicketRef | None:
        """The ticket that approved the current grant: the latest access or exception ticket."""
        for ticket in reversed(self.tickets):
            if ticket.kind in ("access_request", "exception"):
                return ticket
        return None

    def has_ticket(self, system: str, ticket_id: str) -> bool:
        return any(t.system == system and t.ticket_id == ticket_id for t in self.tickets)

    def with_ticket(self, ticket: TicketRef) -> tuple[TicketRef, ...]:
        """The ticket list with `ticket` appended, unless it is already linked."""
        if self.has_ticket(ticket.system, ticket.ticket_id):
            return self.tickets
        return (*self.tickets, ticket)

    def revoke_confirmed(self) -> bool:
        """True when the source confirmed the removal after the revoke was requested."""
        if self.status not in (EntitlementStatus.REVOKED, EntitlementStatus.EXPIRED):
            return False
        if self.revoke_requested_at is None:
            return self.verified_at is not None
        return self.verified_at is not None and self.verified_at >= self.revoke_requested_at

    def event_id(self) -> str:
        return derived_id("entitlement", str(self.key), str(self.version))

    def to_event(self, cause: Cause, actor: str) -> EntitlementEvent:
        """The `entitlement.changed` event announcing this version of the record."""
        if self.updated_at is None or self.version < 1:
            raise ValueError("only a stored record (version >= 1) can be announced")
        event: EntitlementEvent = EntitlementEvent.create(
            event_id=self.event_id(),
            occurred_at=self.updated_at,
            source=f"closeloop/{actor}",
            correlation_id=cause.correlation_id,
            key=self.key,
            change=self.last_change,
            reason=self.reason,
            status=self.status,
            principal_kind=self.principal_kind,
            owner=self.owner,
            tickets=self.tickets,
            granted_at=self.granted_at,
            expires_at=self.expires_at,
            revocation_triggers=self.revocation_triggers,
            project=self.project,
            verified_at=self.verified_at,
            last_recertified_at=self.last_recertified_at,
            recertification_interval=self.recertification_interval,
            recertification_due_at=self.recertification_due_at,
            exception_window_end=self.exception_window_end,
            revoke_requested_at=self.revoke_requested_at,
            revoke_confirm_by=self.revoke_confirm_by,
            source_system=self.source_system,
            record_version=self.version,
        )
        return event

    def command(
        self,
        action: CommandAction,
        reason: RevocationTrigger | Literal["approved_request"],
        *,
        cause: Cause,
        actor: str,
        confirm_by: datetime | None = None,
        ticket: TicketRef | None = None,
        target_system: str | None = None,
    ) -> ProvisioningCommand:
        """A grant or revoke command for this version of the record, with a deterministic command id.

        Build it from the record *after* the change (the version the command belongs to), so that a
        re-issue for the same version has the same id and executors deduplicate it.
        """
        if self.updated_at is None or self.version < 1:
            raise ValueError("build commands from the stored record returned by RecordTransaction.apply")
        command_id = derived_id("command", action.value, str(self.key), str(self.version))
        command: ProvisioningCommand = ProvisioningCommand.create(
            event_id=derived_id("command-event", command_id),
            occurred_at=self.updated_at,
            source=f"closeloop/{actor}",
            correlation_id=cause.correlation_id,
            command_id=command_id,
            action=action,
            key=self.key,
            target_system=target_system or self.source_system,
            reason=reason,
            ticket=ticket,
            confirm_by=confirm_by,
        )
        return command


class IdentityRecord(StrictModel):
    """One identity (a row of `identities`) with its aliases."""

    principal: str = Field(min_length=5, max_length=600)
    kind: IdentityKind = IdentityKind.UNKNOWN
    status: PrincipalStatus = PrincipalStatus.ACTIVE
    owner: str | None = None
    display_name: str | None = None
    source_system: str | None = None
    status_changed_at: AwareDatetime | None = None
    aliases: tuple[str, ...] = ()
    version: int = 0
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None

    @property
    def is_nhi(self) -> bool:
        return self.kind.is_nhi

    @property
    def is_inactive(self) -> bool:
        return self.status in (PrincipalStatus.DEACTIVATED, PrincipalStatus.DELETED, PrincipalStatus.SUSPENDED)


class RecertificationEvidence(StrictModel):
    """A recertification decision (a row of `recertifications`)."""

    entitlement_key: str
    decision: Literal["certified", "revoked", "modified"]
    reviewer: str = Field(min_length=1)
    decided_at: AwareDatetime
    ticket: TicketRef | None = None
    notes: str | None = None


class ExceptionGrant(StrictModel):
    """A break-glass exception (a row of `entitlement_exceptions`)."""

    entitlement_key: str
    reason: str = Field(min_length=1)
    incident_ticket: str | None = None
    ticket: TicketRef
    window_start: AwareDatetime
    window_end: AwareDatetime
    reviewer: str | None = None


class ObservedGrant(StrictModel):
    """The latest grant state a source reported for an entitlement key (a row of `observed_grants`)."""

    key: str
    live: bool
    source_system: str
    observed_at: AwareDatetime
    vendor_event_id: str
    command_id: str | None = None
