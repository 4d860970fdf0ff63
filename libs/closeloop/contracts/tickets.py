"""Ticket events: one normalized event per ITSM ticket transition, on `itsm.tickets.v1`."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from closeloop.contracts.base import Envelope, StrictModel
from closeloop.contracts.identity import EntitlementKey, IdentityKind


class TicketKind(StrEnum):
    ACCESS_REQUEST = "access_request"
    REVOCATION_REQUEST = "revocation_request"
    OFFBOARDING = "offboarding"
    EXCEPTION = "exception"
    RECERTIFICATION = "recertification"
    PROJECT_END = "project_end"


class TicketTransition(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    IN_FULFILMENT = "in_fulfilment"
    FULFILLED = "fulfilled"
    CLOSED_COMPLETE = "closed_complete"
    CLOSED_CANCELLED = "closed_cancelled"
    REOPENED = "reopened"


class ApprovalDecision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    REQUESTED = "requested"


class Approval(StrictModel):
    approver: str = Field(min_length=1, max_length=300, description="Who decided (login, email or vendor id).")
    decision: ApprovalDecision = Field(description="The approver's decision.")
    decided_at: AwareDatetime | None = Field(default=None, description="When the decision was made.")


class RequestedAccess(StrictModel):
    """What the ticket asks for, in canonical form, after the per-source field mapping."""

    system: str = Field(
        min_length=1, max_length=50, description="Target IAM system (okta, entra, aws, github, k8s, vault, ...)."
    )
    resource: str = Field(
        min_length=5,
        max_length=800,
        description="Canonical resource `<system>:<type>:<id>`; provisional `<system>:<default type>:<name>` when the "
        "ticket named it (see `references`).",
    )
    privilege: str = Field(min_length=1, max_length=300, description="Requested privilege, e.g. `member`, `read`.")


class TicketReferences(StrictModel):
    """What the ticket named, exactly as written, for resolution against the identity graph and the catalog.

    `requested_for`, `access` and `entitlement` hold intake's canonical reading; when the ticket named a person by
    email or a resource by its display name, that reading is provisional and consumers bind the references here.
    """

    requested_for: str | None = Field(
        default=None, max_length=600, description="The beneficiary as written (email, login, canonical reference)."
    )
    resource: str | None = Field(
        default=None,
        max_length=800,
        description="The resource as written (display name, `org/repo`, `<type>:<name>`, canonical id, ARN).",
    )


class TicketEvent(Envelope):
    """A ticket moved from one canonical state to another (or was first seen)."""

    EVENT_TYPE: ClassVar[str] = "itsm.ticket.transitioned"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["itsm.ticket.transitioned"] = Field(description="Always `itsm.ticket.transitioned`.")
    system: Literal["servicenow", "jira", "generic"] = Field(description="ITSM system the ticket lives in.")
    ticket_id: str = Field(
        min_length=1, max_length=200, description="Stable vendor id (ServiceNow sys_id, Jira issue id)."
    )
    ticket_number: str = Field(min_length=1, max_length=100, description="Human key (RITM0010001, ACC-42).")
    ticket_url: str | None = Field(default=None, max_length=2000, description="Link back to the original ticket.")
    table: str | None = Field(
        default=None,
        max_length=100,
        description="Vendor record type (sc_req_item, change_request, incident, issue type).",
    )
    kind: TicketKind = Field(description="What the ticket is for.")
    transition: TicketTransition = Field(description="Canonical transition this event records.")
    previous_state: str | None = Field(default=None, max_length=200, description="Vendor state before, when known.")
    state: str = Field(
        min_length=1, max_length=200, description="Vendor state after the transition, as the vendor spells it."
    )
    version: int | None = Field(
        default=None,
        ge=0,
        description="Vendor revision counter (ServiceNow sys_mod_count, Jira changelog id) for ordering.",
    )
    requested_for: str | None = Field(
        default=None,
        max_length=600,
        description="Beneficiary as named in the ticket (email, login, canonical principal).",
    )
    requested_for_kind: IdentityKind = Field(
        default=IdentityKind.UNKNOWN,
        description="Whether the beneficiary is a human or which kind of non-human identity.",
    )
    access: RequestedAccess | None = Field(
        default=None, description="Requested scope, when the ticket is about access."
    )
    references: TicketReferences | None = Field(
        default=None,
        description="The beneficiary and resource as the ticket wrote them, bound late to canonical keys.",
    )
    entitlement: EntitlementKey | None = Field(
        default=None,
        description="Canonical entitlement key the ticket names, when fully specified; also the Kafka key.",
    )
    requested_duration: timedelta | None = Field(
        default=None, description="Requested duration (from ISO 8601, e.g. P30D)."
    )
    requested_until: AwareDatetime | None = Field(
        default=None, description="Requested end date, when given instead of a duration."
    )
    owner: str | None = Field(
        default=None, max_length=600, description="Accountable owner of the access (required for NHIs)."
    )
    approvers: tuple[Approval, ...] = Field(default=(), description="Approvals recorded on the ticket, with times.")
    justification: str | None = Field(default=None, max_length=4000, description="Business justification as written.")
    project: str | None = Field(
        default=None, max_length=200, description="Project or integration the access belongs to."
    )
    incident_ticket: str | None = Field(
        default=None, max_length=100, description="Incident a break-glass exception is tied to."
    )
    window_start: AwareDatetime | None = Field(default=None, description="Start of an exception / break-glass window.")
    window_end: AwareDatetime | None = Field(default=None, description="End of an exception / break-glass window.")
    actor: str | None = Field(default=None, max_length=300, description="Who made the transition in the ITSM tool.")
    requested_by: str | None = Field(
        default=None,
        max_length=600,
        description="Who asked (opener / reporter), when it differs from the beneficiary or is worth keeping.",
    )
    closed_at: AwareDatetime | None = Field(
        default=None, description="When the ticket was closed (set on closing transitions)."
    )
