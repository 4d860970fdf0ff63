"""Encode events to Kafka records and decode them back, upcasting old schema versions.

An upcaster turns the JSON of version N of an event type into version N+1. Decoding applies them in
order until the current version, so JSON written by any earlier release keeps loading.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from closeloop.contracts.base import Envelope
from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementEvent
from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged, SnapshotMarker
from closeloop.contracts.progress import StreamProgress
from closeloop.contracts.tickets import TicketEvent
from closeloop.untrusted import UntrustedInput, load_json

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
Headers = Sequence[tuple[str, bytes]]

EVENT_TYPES: dict[str, type[Envelope]] = {
    cls.EVENT_TYPE: cls
    for cls in (
        TicketEvent,
        GrantEvent,
        PrincipalStatusChanged,
        SnapshotMarker,
        EntitlementEvent,
        ProvisioningCommand,
        StreamProgress,
    )
}

# (event_type, from_version) -> function producing the JSON of from_version + 1; a new schema version
# registers its upcaster here.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class DecodeError(ValueError):
    """The bytes are not a valid closeloop event; `reason` is fit for a dead-letter record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def upcast(data: dict[str, Any], cls: type[Envelope]) -> dict[str, Any]:
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise DecodeError("schema_version must be a positive integer")
    if version > cls.SCHEMA_VERSION:
        raise DecodeError(
            f"{cls.EVENT_TYPE} schema_version {version} is newer than this release ({cls.SCHEMA_VERSION})"
        )
    while version < cls.SCHEMA_VERSION:
        step = UPCASTERS.get((cls.EVENT_TYPE, version))
        if step is None:
            raise DecodeError(f"no upcaster for {cls.EVENT_TYPE} v{version}")
        data = step(dict(data))
        version += 1
        data["schema_version"] = version
    return data


def decode(value: bytes | None, expected: type[Envelope] | tuple[type[Envelope], ...] | None = None) -> Envelope:
    """Decode a record value into its event model, or raise DecodeError with a readable reason."""
    if value is None:
        raise DecodeError("record has no value (tombstone)")
    try:
        data = load_json(value)
    except UntrustedInput as exc:
        raise DecodeError(f"value {exc.reason}") from exc
    if not isinstance(data, dict):
        raise DecodeError("value is not a JSON object")
    event_type = data.get("event_type")
    cls = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    if cls is None:
        raise DecodeError(f"unknown event_type {event_type!r}")
    if expected is not None and not issubclass(cls, expected):
        raise DecodeError(f"event_type {event_type!r} does not belong on this topic")
    upcasted = upcast(data, cls)
    raw = value if upcasted is data else json.dumps(upcasted).encode()
    try:
        return cls.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise DecodeError(describe_validation_error(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each failing field, without echoing input values (they may hold secrets)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def kafka_key(event: Envelope) -> bytes | None:
    key = getattr(event, "key", None)
    if key is not None:
        return str(key).encode()
    if event.subject:
        return event.subject.encode()
    return None


def encode(event: Envelope) -> bytes:
    return event.model_dump_json(exclude_none=False).encode()


def cloudevents_headers(event: Envelope, content_type: str = "application/json") -> list[tuple[str, bytes]]:
    """CloudEvents 1.0 Kafka binding (binary mode) attributes for an event."""
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event.event_id.encode()),
        ("ce_type", event.event_type.encode()),
        ("ce_source", event.source.encode()),
        ("ce_time", event.occurred_at.isoformat().encode()),
        ("ce_schemaversion", str(event.schema_version).encode()),
        ("ce_correlationid", event.correlation_id.encode()),
        ("content-type", content_type.encode()),
    ]
    if event.subject:
        headers.append(("ce_subject", event.subject.encode()))
    return headers


def header_value(headers: Headers | None, name: str) -> str | None:
    for key, value in headers or ():
        if key == name and value is not None:
            return value.decode(errors="replace")
    return None
