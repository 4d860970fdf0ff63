"""Grant events from IAM connectors, on `iam.grants.v1` (keyed by entitlement key, or principal for status).

Single events say that one entitlement was granted or revoked at the source. Snapshots list every live
entitlement of a scope between a `SnapshotMarker` start and end, so the reconciler can sweep what was
not seen. Principal status events say an identity was deactivated, suspended or deleted.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from closeloop.contracts.base import Envelope, StrictModel
from closeloop.contracts.identity import EntitlementKey, IdentityKind


class GrantAction(StrEnum):
    GRANT = "grant"
    REVOKE = "revoke"


class Actor(StrictModel):
    """Who made the change at the source."""

    id: str = Field(min_length=1, max_length=600, description="Vendor id or canonical principal of the actor.")
    name: str | None = Field(default=None, max_length=300, description="Display name or login.")
    kind: IdentityKind = Field(default=IdentityKind.UNKNOWN, description="Human or which kind of non-human identity.")
    is_automation: bool = Field(
        default=False, description="True when the actor is an automation, pipeline, bot or AI agent identity."
    )


class CredentialFact(StrictModel):
    """Facts about an NHI credential, for rotation / stale-credential checks."""

    credential_id: str = Field(
        min_length=1, max_length=300, description="Access key id, token id or credential key id."
    )
    credential_type: str = Field(min_length=1, max_length=100, description="e.g. `aws_access_key`, `okta_api_token`.")
    created_at: AwareDatetime | None = Field(default=None, description="When the credential was created.")
    rotated_at: AwareDatetime | None = Field(default=None, description="When it was last rotated, if known.")
    status: Literal["active", "inactive", "deleted"] = Field(default="active", description="Credential status.")


class GrantEvent(Envelope):
    """One entitlement granted or revoked at the source, as observed by a connector."""

    EVENT_TYPE: ClassVar[str] = "iam.grant.changed"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["iam.grant.changed"] = Field(description="Always `iam.grant.changed`.")
    action: GrantAction = Field(description="`grant` when the entitlement became live, `revoke` when it ended.")
    key: EntitlementKey = Field(description="The entitlement (also the Kafka key and the envelope subject).")
    source_system: str = Field(
        min_length=1, max_length=50, description="okta, entra, aws, github, k8s, vault or a custom name."
    )
    principal_kind: IdentityKind = Field(
        default=IdentityKind.UNKNOWN, description="Kind of the identity that holds it."
    )
    principal_aliases: tuple[str, ...] = Field(
        default=(), description="Other names of the principal seen in the record (email, login, vendor id)."
    )
    resource_type: str | None = Field(
        default=None, max_length=100, description="Vendor resource type, e.g. `UserGroup`."
    )
    resource_name: str | None = Field(default=None, max_length=500, description="Display name of the resource.")
    actor: Actor | None = Field(default=None, description="Who made the change, when the source says.")
    vendor_event_id: str = Field(min_length=1, max_length=300, description="The vendor's id of the record, for dedupe.")
    vendor_event_type: str = Field(
        min_length=1, max_length=200, description="The vendor's event name, e.g. `AttachUserPolicy`."
    )
    credential: CredentialFact | None = Field(
        default=None, description="Credential facts, for NHI key and token events."
    )
    snapshot_id: str | None = Field(
        default=None, max_length=200, description="Set when this grant is part of a full listing (snapshot)."
    )
    command_id: str | None = Field(
        default=None,
        max_length=200,
        description="Provisioning command that caused this change, when an executor knows it.",
    )
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="When the source itself will end this grant (time-bound PIM assignment, token TTL), if it says.",
    )
    details: dict[str, str] = Field(
        default_factory=dict,
        max_length=50,
        description="Vendor facts worth keeping that are not part of the key (e.g. `policies`, `trust_policy_principals`, "
        "`time_source`); small string values only.",
    )


class PrincipalStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    DELETED = "deleted"


class PrincipalStatusChanged(Envelope):
    """An identity's lifecycle changed at the source (created, deactivated, suspended, deleted)."""

    EVENT_TYPE: ClassVar[str] = "iam.principal.status_changed"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["iam.principal.status_changed"] = Field(description="Always `iam.principal.status_changed`.")
    principal: str = Field(min_length=5, max_length=600, description="Canonical principal `<system>:<type>:<id>`.")
    principal_kind: IdentityKind = Field(default=IdentityKind.UNKNOWN, description="Kind of the identity.")
    principal_aliases: tuple[str, ...] = Field(default=(), description="Other names of the principal.")
    status: PrincipalStatus = Field(description="The identity's status after the change.")
    source_system: str = Field(min_length=1, max_length=50, description="System that reported the change.")
    actor: Actor | None = Field(default=None, description="Who made the change.")
    vendor_event_id: str = Field(min_length=1, max_length=300, description="The vendor's id of the record.")
    vendor_event_type: str = Field(min_length=1, max_length=200, description="The vendor's event name.")
    credential: CredentialFact | None = Field(
        default=None, description="Credential facts, when the change is about one."
    )


class SnapshotPhase(StrEnum):
    STARTED = "started"
    COMPLETED = "completed"


class SnapshotMarker(Envelope):
    """Frames a full listing of one scope's live entitlements; grants in between carry `snapshot_id`."""

    EVENT_TYPE: ClassVar[str] = "iam.snapshot.marked"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["iam.snapshot.marked"] = Field(description="Always `iam.snapshot.marked`.")
    snapshot_id: str = Field(
        min_length=1, max_length=200, description="Id shared by the markers and the listed grants."
    )
    phase: SnapshotPhase = Field(description="`started` before the listing, `completed` after its last grant.")
    source_system: str = Field(min_length=1, max_length=50, description="System listed.")
    scope: str = Field(
        min_length=1, max_length=800, description="What was listed: a canonical resource, or `<system>:*:*` for all."
    )
    grant_count: int | None = Field(default=None, ge=0, description="Number of grants listed (on `completed`).")
