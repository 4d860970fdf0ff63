"""Entitlement record events on `entitlements.v1` (compacted, keyed by entitlement key).

Each event carries the whole current record, so the latest event per key is the record's state and
log compaction keeps exactly that.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from closeloop.contracts.base import Envelope, StrictModel
from closeloop.contracts.identity import EntitlementKey, IdentityKind


class EntitlementStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REVOKING = "revoking"
    REVOKED = "revoked"
    EXPIRED = "expired"
    REFUSED = "refused"


class EntitlementChange(StrEnum):
    """What happened to the record in this event."""

    REQUESTED = "requested"
    REFUSED = "refused"
    ACTIVATED = "activated"
    REVOKE_REQUESTED = "revoke_requested"
    REVOKED = "revoked"
    EXPIRED = "expired"
    EXPIRY_NOTICE = "expiry_notice"
    REVOKE_UNCONFIRMED = "revoke_unconfirmed"
    RECERTIFICATION_DUE = "recertification_due"
    RECERTIFICATION_OVERDUE = "recertification_overdue"
    RECERTIFIED = "recertified"
    OWNER_CHANGED = "owner_changed"
    OWNER_OFFBOARDED = "owner_offboarded"
    EXCEPTION_ENDED = "exception_ended"
    RENEWED = "renewed"  # another approved ticket extended a live entitlement
    VERIFIED = "verified"  # the source confirmed the live grant again (snapshot or repeat event)


class RevocationTrigger(StrEnum):
    EXPIRY = "expiry"
    OFFBOARDING = "offboarding"
    PROJECT_END = "project_end"
    OWNER_DEPARTURE = "owner_departure"
    RECERTIFICATION = "recertification"
    EXCEPTION_WINDOW_END = "exception_window_end"
    TICKET = "ticket"


class TicketRef(StrictModel):
    system: str = Field(min_length=1, max_length=50, description="servicenow, jira or generic.")
    ticket_id: str = Field(min_length=1, max_length=200, description="Vendor ticket id.")
    ticket_number: str = Field(min_length=1, max_length=100, description="Human ticket key.")
    kind: str = Field(min_length=1, max_length=50, description="Ticket kind (access_request, revocation_request, ...).")


class EntitlementEvent(Envelope):
    """The entitlement record after a change, with what changed and why."""

    EVENT_TYPE: ClassVar[str] = "entitlement.changed"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["entitlement.changed"] = Field(description="Always `entitlement.changed`.")
    key: EntitlementKey = Field(description="The entitlement (also the Kafka key).")
    change: EntitlementChange = Field(description="What happened in this event.")
    reason: str | None = Field(
        default=None, max_length=2000, description="Why, in words (e.g. the policy that refused)."
    )
    status: EntitlementStatus = Field(description="Record status after the change.")
    principal_kind: IdentityKind = Field(default=IdentityKind.UNKNOWN, description="Human or which kind of NHI.")
    owner: str | None = Field(default=None, max_length=600, description="Accountable owner; required for NHIs.")
    tickets: tuple[TicketRef, ...] = Field(default=(), description="Tickets that approved or changed this entitlement.")
    granted_at: AwareDatetime | None = Field(default=None, description="When the grant was verified at the source.")
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the entitlement expires (None: no expiry)."
    )
    revocation_triggers: tuple[RevocationTrigger, ...] = Field(default=(), description="What ends this entitlement.")
    project: str | None = Field(default=None, max_length=200, description="Project tag, for project-end revocation.")
    verified_at: AwareDatetime | None = Field(default=None, description="When the source last confirmed the state.")
    last_recertified_at: AwareDatetime | None = Field(default=None, description="Last recertification decision.")
    recertification_interval: timedelta | None = Field(default=None, description="How often it must be recertified.")
    recertification_due_at: AwareDatetime | None = Field(default=None, description="Next recertification due date.")
    exception_window_end: AwareDatetime | None = Field(
        default=None, description="End of the break-glass window, for exception entitlements."
    )
    revoke_requested_at: AwareDatetime | None = Field(default=None, description="When the revoke command went out.")
    revoke_confirm_by: AwareDatetime | None = Field(
        default=None, description="Deadline for the source to confirm the revoke (revoke SLA)."
    )
    source_system: str | None = Field(
        default=None, max_length=50, description="System that holds the entitlement (okta, github, aws, ...)."
    )
    record_version: int | None = Field(
        default=None,
        ge=1,
        description="Version of the record this event announces (+1 per change); consumers drop older versions.",
    )
