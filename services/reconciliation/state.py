"""The join state: what was approved (tickets), what is live (grants) and what the record says, per entitlement.

Pure data, no faust: the faust tables store these models as JSON (`dump`) and the rules read them.

How the join is keyed (and why): every input is re-keyed by **principal** onto the internal join topic, so one
partition holds everything about an identity — each of its entitlements (exact key `principal|resource|
privilege`), its status at the source, and its principal-level tickets (offboarding). The rules that look
beyond the exact key then stay local to one partition:

- SCOPE_EXCEEDS_APPROVAL compares a grant with approvals for the same (principal, resource) at another
  privilege: the "siblings" of an entitlement are found through the principal's key index;
- GRANT_TO_INACTIVE_PRINCIPAL needs the principal's status (a principal-keyed event);
- an offboarding ticket names a principal, not an entitlement.

State is stored per exact entitlement key (small values), with a per-principal index of its keys; alert state
is stored per entitlement key, one slot per rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from closeloop.contracts.alerts import DriftRule
from closeloop.contracts.entitlements import EntitlementStatus
from closeloop.contracts.grants import GrantAction, PrincipalStatus
from closeloop.contracts.identity import IdentityKind
from closeloop.contracts.tickets import TicketKind, TicketTransition


class StateModel(BaseModel):
    """Immutable state value; `dump()` is what the tables store."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def load(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)


# Ticket kinds whose approval lets access exist, and kinds whose closure means access must go.
APPROVING_KINDS = frozenset({TicketKind.ACCESS_REQUEST, TicketKind.EXCEPTION, TicketKind.RECERTIFICATION})
REMOVAL_KINDS = frozenset({TicketKind.REVOCATION_REQUEST, TicketKind.OFFBOARDING, TicketKind.PROJECT_END})
INACTIVE_STATUSES = frozenset({PrincipalStatus.SUSPENDED, PrincipalStatus.DEACTIVATED, PrincipalStatus.DELETED})


class TicketFact(StateModel):
    """One ticket as the join knows it: its latest transition and the milestones it passed."""

    system: str
    ticket_id: str
    ticket_number: str
    ticket_url: str | None = None
    kind: TicketKind
    transition: TicketTransition
    state: str
    version: int | None = None
    occurred_at: datetime
    event_id: str
    correlation_id: str
    key: str | None = None
    principal: str | None = None
    resource: str | None = None
    privilege: str | None = None
    requested_for_kind: IdentityKind = IdentityKind.UNKNOWN
    approved_at: datetime | None = None
    approval_event_id: str | None = None
    human_approved: bool = False
    fulfilled_at: datetime | None = None
    closed_at: datetime | None = None
    rejected_at: datetime | None = None
    duration: timedelta | None = None
    requested_until: datetime | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    incident_ticket: str | None = None
    owner: str | None = None
    actor: str | None = None

    @property
    def cancelled(self) -> bool:
        return self.transition in (TicketTransition.CLOSED_CANCELLED, TicketTransition.REJECTED)

    @property
    def is_closed(self) -> bool:
        return self.transition in (TicketTransition.CLOSED_COMPLETE, TicketTransition.CLOSED_CANCELLED)

    @property
    def valid_until(self) -> datetime | None:
        """End of the access this ticket approves: a window end, a requested date, or approval + duration."""
        if self.kind == TicketKind.EXCEPTION and self.window_end is not None:
            return self.window_end
        if self.requested_until is not None:
            return self.requested_until
        if self.duration is not None and self.approved_at is not None:
            return self.approved_at + self.duration
        return None

    def approves_at(self, now: datetime) -> bool:
        """An approving ticket, approved, neither rejected nor cancelled, and not past its end."""
        if self.kind not in APPROVING_KINDS or self.approved_at is None or self.cancelled:
            return False
        until = self.valid_until
        return until is None or now < until

    @property
    def removal_closed_at(self) -> datetime | None:
        """When this ticket started requiring removal: a removal ticket completed, or an access request cancelled."""
        if self.kind in REMOVAL_KINDS and self.transition == TicketTransition.CLOSED_COMPLETE:
            return self.closed_at or self.occurred_at
        if self.kind == TicketKind.ACCESS_REQUEST and self.transition == TicketTransition.CLOSED_CANCELLED:
            return self.closed_at or self.occurred_at
        return None


class ActorFact(StateModel):
    id: str
    name: str | None = None
    kind: IdentityKind = IdentityKind.UNKNOWN
    is_automation: bool = False

    @property
    def automated(self) -> bool:
        return self.is_automation or self.kind in (IdentityKind.AI_AGENT, IdentityKind.BOT)


class CredentialState(StateModel):
    credential_id: str
    credential_type: str
    created_at: datetime | None = None
    rotated_at: datetime | None = None
    status: str = "active"

    @property
    def age_from(self) -> datetime | None:
        return self.rotated_at or self.created_at


class ChangeFact(StateModel):
    """The latest grant or revoke observed for an entitlement (not a snapshot re-listing)."""

    action: GrantAction
    occurred_at: datetime
    event_id: str
    vendor_event_id: str
    vendor_event_type: str
    actor: ActorFact | None = None
    command_id: str | None = None


class GrantFact(StateModel):
    """What the source says about an entitlement."""

    live: bool
    source_system: str
    last_event_at: datetime
    live_since: datetime | None = None
    live_event_id: str | None = None
    live_vendor_event_type: str | None = None
    live_via_snapshot: bool = False
    # When the reconciler itself first saw this grant live (processing time): records follow grants closely.
    seen_live_at: datetime | None = None
    ended_at: datetime | None = None
    ended_event_id: str | None = None
    gone_by_snapshot: str | None = None
    last_change: ChangeFact | None = None
    last_snapshot_id: str | None = None
    last_seen_at: datetime | None = None
    principal_kind: IdentityKind = IdentityKind.UNKNOWN
    resource_type: str | None = None
    resource_name: str | None = None
    source_expires_at: datetime | None = None
    credential: CredentialState | None = None


class RecordFact(StateModel):
    """The entitlement record (latest `entitlement.changed`), plus flags that outlive the change that set them."""

    status: EntitlementStatus
    change: str
    event_id: str
    occurred_at: datetime
    record_version: int | None = None
    reason: str | None = None
    principal_kind: IdentityKind = IdentityKind.UNKNOWN
    owner: str | None = None
    ticket_numbers: tuple[str, ...] = ()
    ticket_kinds: tuple[str, ...] = ()
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    exception_window_end: datetime | None = None
    recertification_due_at: datetime | None = None
    last_recertified_at: datetime | None = None
    revoke_requested_at: datetime | None = None
    revoke_confirm_by: datetime | None = None
    # When a change that outlives later, unrelated changes was announced (None: not in force).
    owner_offboarded_at: datetime | None = None
    revoke_unconfirmed_at: datetime | None = None
    recert_overdue_at: datetime | None = None
    exception_ended_at: datetime | None = None
    # Snapshot id that did not list this entitlement although the record holds it.
    gone_at_source: str | None = None

    @property
    def is_exception(self) -> bool:
        return self.exception_window_end is not None or TicketKind.EXCEPTION.value in self.ticket_kinds

    @property
    def approved_by_record(self) -> bool:
        """The record holds the entitlement as approved (active or being provisioned, with a ticket behind it)."""
        return self.status in (EntitlementStatus.ACTIVE, EntitlementStatus.PENDING) and bool(self.ticket_numbers)


class PendingTicket(StateModel):
    """A ticket whose references are not bound yet (unknown or ambiguous names), parked under its provisional key.

    `events` are the ticket's transitions as received (JSON), replayed onto the bound key once the names resolve.
    """

    ticket_id: str
    fact: TicketFact
    events: tuple[dict[str, Any], ...]
    since: datetime
    unresolved: tuple[str, ...] = ()
    ambiguous: tuple[str, ...] = ()


class EntitlementState(StateModel):
    key: str
    principal: str
    resource: str
    privilege: str
    tickets: tuple[TicketFact, ...] = ()
    pending: tuple[PendingTicket, ...] = ()
    grant: GrantFact | None = None
    record: RecordFact | None = None
    next_check: datetime | None = None

    @property
    def live(self) -> bool:
        """Live at the source: the grant stream says so, or (never observed there) the record holds it active."""
        if self.grant is not None:
            return self.grant.live
        if self.record is not None:
            return self.record.status in (EntitlementStatus.ACTIVE, EntitlementStatus.REVOKING) and not (
                self.record.gone_at_source
            )
        return False

    @property
    def principal_kind(self) -> IdentityKind:
        for kind in (
            self.record.principal_kind if self.record else IdentityKind.UNKNOWN,
            self.grant.principal_kind if self.grant else IdentityKind.UNKNOWN,
            *(t.requested_for_kind for t in self.tickets),
        ):
            if kind != IdentityKind.UNKNOWN:
                return kind
        return IdentityKind.UNKNOWN

    def ticket(self, ticket_id: str) -> TicketFact | None:
        return next((t for t in self.tickets if t.ticket_id == ticket_id), None)


class PrincipalState(StateModel):
    principal: str
    kind: IdentityKind = IdentityKind.UNKNOWN
    status: PrincipalStatus | None = None
    status_at: datetime | None = None
    status_event_id: str | None = None
    status_source: str | None = None
    keys: tuple[str, ...] = ()
    tickets: tuple[TicketFact, ...] = ()

    @property
    def inactive(self) -> bool:
        return self.status in INACTIVE_STATUSES

    def resource_keys(self, resource: str) -> tuple[str, ...]:
        suffix = f"|{resource}|"
        return tuple(k for k in self.keys if suffix in k)


class AlertState(StateModel):
    """One finding (entitlement key, rule): whether it is open and how many records it has emitted."""

    uid: str
    rule: DriftRule
    open: bool
    revision: int
    fingerprint: str
    first_opened_at: datetime
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    last_event_id: str


class AlertSlots(StateModel):
    """Every rule's finding for one entitlement key."""

    key: str
    alerts: tuple[AlertState, ...] = ()

    def get(self, rule: DriftRule) -> AlertState | None:
        return next((a for a in self.alerts if a.rule == rule), None)

    def put(self, alert: AlertState) -> AlertSlots:
        others = tuple(a for a in self.alerts if a.rule != alert.rule)
        return self.model_copy(update={"alerts": tuple(sorted((*others, alert), key=lambda a: a.rule.value))})


class SnapshotProgress(StateModel):
    """A connector snapshot as one join partition saw it: which input partitions' markers arrived."""

    snapshot_id: str
    source_system: str
    scope: str
    started_at: datetime | None = None
    started_from: tuple[int, ...] = ()
    completed_from: tuple[int, ...] = ()
    expected: int
    swept_at: datetime | None = None

    @property
    def complete(self) -> bool:
        return len(self.completed_from) >= self.expected


class PersonTickets(StateModel):
    """Principal-level tickets that name a person by a bare id (email, login), matched on every partition."""

    person: str
    tickets: tuple[TicketFact, ...] = ()
