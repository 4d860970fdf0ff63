"""What a normalizer saw in one vendor record, before it is compared with the last seen state.

A normalizer turns a vendor record into a `TicketObservation`: the ticket's canonical status per this
record, its ordering version, and a fully validated draft `TicketEvent` (transition = that status). The
handler then decides, against the last seen state, whether and which transition to publish.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from closeloop.contracts.codec import describe_validation_error
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.contracts.tickets import Approval, RequestedAccess, TicketEvent, TicketKind, TicketTransition
from request_intake.problems import Unmappable

# Statuses after which the ticket is finished; leaving one of them is a reopening.
CLOSED = frozenset({TicketTransition.CLOSED_COMPLETE, TicketTransition.CLOSED_CANCELLED, TicketTransition.REJECTED})

# Vendor fields behind (ticket key, ticket number, state), the values kept in PostgreSQL.
_STORED_FIELDS = {
    "servicenow": ("sys_id", "number", "state"),
    "jira": ("issue.id", "issue.key", "changelog.items[status].toString"),
    "generic": ("data.ticket_id", "data.ticket_number", "data.state"),
}
_VERSION_FIELD = {"servicenow": "sys_mod_count", "jira": "changelog.id", "generic": "data.version"}
# The version column is a PostgreSQL bigint.
MAX_VERSION = 2**63 - 1

_EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://closeloop.dev/request-intake/ticket-event")


def ticket_event_id(system: str, state_key: str, version_label: str) -> str:
    """Deterministic event id: the same vendor revision always yields the same id, so a re-publish after a
    crash (at-least-once) is deduplicated downstream."""
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{system}|{state_key}|{version_label}"))


@dataclass(frozen=True)
class TicketFacts:
    """Mapped, canonical content of a ticket; `origins` names the vendor path behind each event field."""

    kind: TicketKind
    requested_for: str | None = None
    requested_for_kind: IdentityKind = IdentityKind.UNKNOWN
    access: RequestedAccess | None = None
    entitlement: EntitlementKey | None = None
    requested_duration: timedelta | None = None
    requested_until: datetime | None = None
    owner: str | None = None
    approvers: tuple[Approval, ...] = ()
    justification: str | None = None
    project: str | None = None
    incident_ticket: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    requested_by: str | None = None
    origins: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TicketObservation:
    state_key: str  # the ticket's identity in the last-seen table, unique within its system
    phase: TicketTransition  # canonical status the ticket is in according to this record
    vendor_state: str
    version: int | None  # vendor revision (ServiceNow sys_mod_count, Jira changelog id)
    updated_at: datetime | None  # vendor update time, the ordering fallback when there is no version
    draft: TicketEvent  # validated; transition == phase until the handler decides
    previous_vendor_state: str | None = None  # when the record itself says (Jira changelog `fromString`)
    previous_phase_hint: TicketTransition | None = None  # canonical status before, when the record says
    reopened_hint: bool = False  # the vendor says this was a reopening (Jira Server `issue_reopened`)

    def __post_init__(self) -> None:
        # PostgreSQL text cannot hold NUL characters; refuse them here (422) rather than fail at the database.
        fields = _STORED_FIELDS[self.draft.system]
        for field_name, value in zip(
            fields, (self.state_key, self.draft.ticket_number, self.vendor_state), strict=True
        ):
            if "\x00" in value:
                raise Unmappable(field_name, "contains a NUL character")
        if self.version is not None and not 0 <= self.version <= MAX_VERSION:
            raise Unmappable(_VERSION_FIELD[self.draft.system], f"must be between 0 and {MAX_VERSION}")

    @property
    def system(self) -> str:
        return self.draft.system

    @property
    def ticket(self) -> str:
        return f"{self.draft.system}:{self.draft.ticket_number}"

    def kafka_key(self) -> bytes:
        """Tickets are keyed by entitlement key when known (joins with grants), else `<system>:<ticket_id>`."""
        if self.draft.entitlement is not None:
            return self.draft.entitlement.kafka_key()
        return f"{self.draft.system}:{self.draft.ticket_id}".encode()


def build_draft(facts: TicketFacts, origins_extra: dict[str, str] | None = None, **envelope: Any) -> TicketEvent:
    """Validate the event now, so a field the contract refuses is a 422 before any side effect."""
    fields: dict[str, Any] = {
        "kind": facts.kind,
        "requested_for": facts.requested_for,
        "requested_for_kind": facts.requested_for_kind,
        "access": facts.access,
        "entitlement": facts.entitlement,
        "requested_duration": facts.requested_duration,
        "requested_until": facts.requested_until,
        "owner": facts.owner,
        "approvers": facts.approvers,
        "justification": facts.justification,
        "project": facts.project,
        "incident_ticket": facts.incident_ticket,
        "window_start": facts.window_start,
        "window_end": facts.window_end,
        "requested_by": facts.requested_by,
        **envelope,
    }
    fields.setdefault("correlation_id", fields.get("event_id"))
    try:
        event: TicketEvent = TicketEvent.create(**fields)
    except ValidationError as exc:
        origins = {**facts.origins, **(origins_extra or {})}
        error = exc.errors(include_url=False, include_input=False)[0]
        name = str(error["loc"][0]) if error["loc"] else "<event>"
        raise Unmappable(origins.get(name, name), describe_validation_error(exc)) from exc
    return event
