"""The envelope every closeloop event carries, and the strict model base.

The envelope fields map onto CloudEvents 1.0 attributes (id, type, time, source, subject) and travel
both in the JSON value and as `ce_*` Kafka headers, so a consumer can route without parsing the body.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Base for every contract: unknown keys are errors and instances are immutable.

    Wire input is validated with `strict=True` (see `codec.decode`): no silent coercion of numbers
    from strings or of strings from numbers. Construction in code stays lax so enums can be passed
    by value.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


def new_event_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(StrictModel):
    """Envelope attributes shared by every event and command on closeloop topics."""

    EVENT_TYPE: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: str = Field(
        default_factory=new_event_id,
        min_length=1,
        max_length=200,
        description="Unique id of this event; consumers deduplicate on it (CloudEvents `id`).",
    )
    event_type: str = Field(description="Dotted event type, e.g. `itsm.ticket.transitioned` (CloudEvents `type`).")
    schema_version: int = Field(ge=1, description="Version of this event type's schema; old versions are upcast.")
    occurred_at: AwareDatetime = Field(
        description="When the fact happened at its source, timezone-aware (CloudEvents `time`)."
    )
    source: str = Field(
        min_length=1,
        max_length=500,
        description="URI-reference of the producer or vendor system, e.g. `closeloop/request-intake` "
        "or `okta://example.okta.com` (CloudEvents `source`).",
    )
    subject: str | None = Field(
        default=None,
        max_length=2000,
        description="Canonical entitlement key this event is about, when there is one (CloudEvents `subject`).",
    )
    correlation_id: str = Field(
        min_length=1,
        max_length=200,
        description="Id shared by every event caused by the same originating input, for tracing across services.",
    )

    @classmethod
    def envelope_defaults(cls) -> dict[str, Any]:
        return {"event_type": cls.EVENT_TYPE, "schema_version": cls.SCHEMA_VERSION}

    @classmethod
    def create(cls, **fields: Any) -> Any:
        """Build an event of this type with event_type, schema_version and subject filled in."""
        fields = {**cls.envelope_defaults(), **fields}
        if fields.get("subject") is None:
            key = fields.get("key") or fields.get("entitlement")
            if isinstance(key, dict):
                from closeloop.contracts.identity import EntitlementKey

                key = EntitlementKey(**key)
            if key is not None:
                fields["subject"] = str(key)
        return cls(**fields)
