"""Events for provisioning tests, built from the fixtures in tests/data/provisioning with overrides."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from closeloop.contracts.grants import GrantAction, GrantEvent
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.contracts.tickets import TicketEvent, TicketKind, TicketTransition

DATA = Path(__file__).resolve().parents[2] / "data" / "provisioning"
T0 = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def key(
    principal: str = "okta:user:alice@example.com",
    resource: str = "okta:group:00g1engreaders",
    privilege: str = "member",
) -> EntitlementKey:
    return EntitlementKey(principal=principal, resource=resource, privilege=privilege)


def ticket(
    entitlement: EntitlementKey | None = None,
    *,
    kind: TicketKind = TicketKind.ACCESS_REQUEST,
    transition: TicketTransition = TicketTransition.APPROVED,
    ticket_id: str | None = None,
    ticket_number: str | None = None,
    kind_of_principal: IdentityKind = IdentityKind.HUMAN,
    duration: timedelta | None = timedelta(days=30),
    occurred_at: datetime = T0,
    **overrides: Any,
) -> TicketEvent:
    """A ticket event in the shape request-intake publishes (servicenow catalog item)."""
    entitlement = entitlement or key()
    data = fixture("approved_access_request.json")
    suffix = uuid.uuid4().hex[:8]
    data.update(
        event_id=str(uuid.uuid4()),
        occurred_at=occurred_at.isoformat(),
        subject=str(entitlement),
        correlation_id=f"corr-{suffix}",
        ticket_id=ticket_id or f"sys{suffix}",
        ticket_number=ticket_number or f"RITM{suffix}",
        kind=kind.value,
        transition=transition.value,
        state=transition.value,
        requested_for=entitlement.principal,
        requested_for_kind=kind_of_principal.value,
        access={"system": entitlement.system, "resource": entitlement.resource, "privilege": entitlement.privilege},
        entitlement=entitlement.model_dump(),
        requested_duration=None,
    )
    data.update(overrides)
    event = TicketEvent.model_validate(data)
    if duration is not None and "requested_duration" not in overrides and "requested_until" not in overrides:
        event = event.model_copy(update={"requested_duration": duration})
    return event


def grant(
    entitlement: EntitlementKey | None = None,
    *,
    action: GrantAction = GrantAction.GRANT,
    occurred_at: datetime | None = None,
    command_id: str | None = None,
    **overrides: Any,
) -> GrantEvent:
    """A grant event in the shape the connectors publish."""
    entitlement = entitlement or key()
    data = fixture("okta_group_member_grant.json")
    suffix = uuid.uuid4().hex[:8]
    data.update(
        event_id=str(uuid.uuid4()),
        occurred_at=(occurred_at or datetime.now(UTC)).isoformat(),
        subject=str(entitlement),
        correlation_id=f"corr-{suffix}",
        action=action.value,
        key=entitlement.model_dump(),
        source_system=entitlement.system,
        principal_aliases=[],
        vendor_event_id=f"vendor-{suffix}",
        vendor_event_type="group.user_membership.add"
        if action is GrantAction.GRANT
        else "group.user_membership.remove",
        command_id=command_id,
    )
    data.update(overrides)
    return GrantEvent.model_validate(data)
