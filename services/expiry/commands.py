"""Revoke commands and the deterministic ids that make them idempotent.

A revoke's `command_id` is derived from the entitlement, the trigger and the instant the revoke was
decided, so every attempt of the same revoke (and every worker that might redo it) names the same
command, and executors deduplicate on it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import RevocationTrigger, TicketRef
from closeloop.contracts.identity import EntitlementKey

COMMAND_NAMESPACE = uuid.UUID("6d1c0f9e-4b1a-5c3e-9d5e-3a2f1e0c7b61")


def revoke_command_id(key: EntitlementKey, trigger: RevocationTrigger, decided_at: datetime) -> str:
    basis = f"revoke|{key}|{trigger.value}|{decided_at.isoformat()}"
    return f"rvk-{uuid.uuid5(COMMAND_NAMESPACE, basis)}"


def derived_event_id(*parts: object) -> str:
    """A deterministic event id, for events a repeat of the same step would emit again."""
    return str(uuid.uuid5(COMMAND_NAMESPACE, "|".join(str(p) for p in parts)))


def revoke_command(
    *,
    key: EntitlementKey,
    command_id: str,
    trigger: RevocationTrigger,
    attempt: int,
    confirm_by: datetime,
    now: datetime,
    source: str,
    correlation_id: str,
    ticket: TicketRef | None = None,
) -> ProvisioningCommand:
    cmd: ProvisioningCommand = ProvisioningCommand.create(
        event_id=derived_event_id(command_id, attempt),
        occurred_at=now,
        source=source,
        correlation_id=correlation_id,
        command_id=command_id,
        action=CommandAction.REVOKE,
        key=key,
        target_system=key.system,
        reason=trigger,
        ticket=ticket,
        confirm_by=confirm_by,
        attempt=attempt,
    )
    return cmd
