"""Build grant and principal-status events with deterministic ids.

The event id is a UUIDv5 of (source system, vendor record id, vendor event type, index of the event
within the record). The same vendor record therefore always yields the same event ids, whichever way it
arrived (hook, raw topic, replay), and consumers that deduplicate by `event_id` drop redeliveries.
The vendor event type is part of the name because some sources reuse record ids across event types
(synthetic test corpora do; real ones should not, and then it changes nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

from closeloop.contracts.grants import (
    Actor,
    CredentialFact,
    GrantAction,
    GrantEvent,
    PrincipalStatus,
    PrincipalStatusChanged,
)
from closeloop.contracts.identity import EntitlementKey, IdentityKind

# Fixed namespace for closeloop connector event ids; changing it would change every id ever derived.
EVENT_ID_NAMESPACE = uuid.UUID("5d1f6a2e-8c1b-4f7e-9a35-2b7c0e4d91a3")
MAX_TEXT = 500
MAX_ALIASES = 20


def deterministic_event_id(source_system: str, vendor_event_id: str, vendor_event_type: str, index: int) -> str:
    """Stable id of the `index`-th event derived from one vendor record."""
    name = "|".join((source_system, vendor_event_id, vendor_event_type, str(index)))
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def record_key(vendor_event_id: str, vendor_event_type: str) -> str:
    """Key of one vendor record in the processed-records table (per source)."""
    return f"{vendor_event_type}|{vendor_event_id}"[:600]


def correlation_for(source_system: str, vendor_event_id: str) -> str:
    """Correlation id shared by every event derived from one vendor record."""
    return f"{source_system}:{vendor_event_id}"[:200]


def _clip(value: str | None, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:limit] or None


def _aliases(principal: str, aliases: Iterable[str]) -> tuple[str, ...]:
    seen: list[str] = []
    for alias in aliases:
        alias = alias.strip()
        if alias and alias != principal and alias not in seen and len(alias) <= 600:
            seen.append(alias)
    return tuple(seen[:MAX_ALIASES])


def build_grant(
    *,
    action: GrantAction | str,
    principal: str,
    resource: str,
    privilege: str,
    source_system: str,
    vendor_event_id: str,
    vendor_event_type: str,
    occurred_at: datetime,
    index: int = 0,
    source: str | None = None,
    principal_kind: IdentityKind = IdentityKind.UNKNOWN,
    principal_aliases: Iterable[str] = (),
    resource_type: str | None = None,
    resource_name: str | None = None,
    actor: Actor | None = None,
    credential: CredentialFact | None = None,
    expires_at: datetime | None = None,
    details: Mapping[str, str] | None = None,
    correlation_id: str | None = None,
    snapshot_id: str | None = None,
    command_id: str | None = None,
    event_id: str | None = None,
) -> GrantEvent:
    """One entitlement granted or revoked; raises ValueError when a reference is not canonical."""
    key = EntitlementKey(principal=principal, resource=resource, privilege=privilege)
    event: GrantEvent = GrantEvent.create(
        event_id=event_id or deterministic_event_id(source_system, vendor_event_id, vendor_event_type, index),
        occurred_at=occurred_at,
        source=source or source_system,
        correlation_id=correlation_id or correlation_for(source_system, vendor_event_id),
        action=GrantAction(action),
        key=key,
        source_system=source_system,
        principal_kind=principal_kind,
        principal_aliases=_aliases(key.principal, principal_aliases),
        resource_type=_clip(resource_type, 100),
        resource_name=_clip(resource_name),
        actor=actor,
        vendor_event_id=vendor_event_id[:300],
        vendor_event_type=vendor_event_type[:200],
        credential=credential,
        expires_at=expires_at,
        details={k[:100]: v[:1000] for k, v in (details or {}).items()},
        snapshot_id=snapshot_id,
        command_id=command_id,
    )
    return event


def build_principal_status(
    *,
    principal: str,
    status: PrincipalStatus | str,
    source_system: str,
    vendor_event_id: str,
    vendor_event_type: str,
    occurred_at: datetime,
    index: int = 0,
    source: str | None = None,
    principal_kind: IdentityKind = IdentityKind.UNKNOWN,
    principal_aliases: Iterable[str] = (),
    actor: Actor | None = None,
    credential: CredentialFact | None = None,
    correlation_id: str | None = None,
) -> PrincipalStatusChanged:
    """An identity's lifecycle changed; keyed (and `subject`-ed) by its canonical principal."""
    canonical = EntitlementKey(principal=principal, resource=principal, privilege="status").principal
    event: PrincipalStatusChanged = PrincipalStatusChanged.create(
        event_id=deterministic_event_id(source_system, vendor_event_id, vendor_event_type, index),
        occurred_at=occurred_at,
        source=source or source_system,
        subject=canonical,
        correlation_id=correlation_id or correlation_for(source_system, vendor_event_id),
        principal=canonical,
        principal_kind=principal_kind,
        principal_aliases=_aliases(canonical, principal_aliases),
        status=PrincipalStatus(status),
        source_system=source_system,
        actor=actor,
        vendor_event_id=vendor_event_id[:300],
        vendor_event_type=vendor_event_type[:200],
        credential=credential,
    )
    return event
