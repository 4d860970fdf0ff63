"""Provisioning commands on `provisioning.commands.v1`: imperative, executed by IAM executors."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from closeloop.contracts.base import Envelope
from closeloop.contracts.entitlements import RevocationTrigger, TicketRef
from closeloop.contracts.identity import EntitlementKey


class CommandAction(StrEnum):
    GRANT = "grant"
    REVOKE = "revoke"


class ProvisioningCommand(Envelope):
    """Grant or revoke one entitlement at its source system."""

    EVENT_TYPE: ClassVar[str] = "provisioning.command.issued"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["provisioning.command.issued"] = Field(description="Always `provisioning.command.issued`.")
    command_id: str = Field(
        min_length=1, max_length=200, description="Deterministic id; executors deduplicate and report on it."
    )
    action: CommandAction = Field(description="Grant or revoke.")
    key: EntitlementKey = Field(description="The entitlement to change (also the Kafka key).")
    target_system: str = Field(min_length=1, max_length=50, description="System the executor acts on.")
    reason: RevocationTrigger | Literal["approved_request"] = Field(
        description="Why: an approved request, or the revocation trigger that fired."
    )
    ticket: TicketRef | None = Field(default=None, description="Ticket behind the command, when there is one.")
    confirm_by: AwareDatetime | None = Field(
        default=None, description="The source must confirm the change by then, or the command is unconfirmed."
    )
    attempt: int = Field(default=1, ge=1, description="Delivery attempt; retries increase it, the command_id stays.")
