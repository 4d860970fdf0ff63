"""Event contracts: one module per event family, pydantic v2, strict, each field described."""

from closeloop.contracts.alerts import DriftRule, Severity
from closeloop.contracts.base import Envelope, StrictModel
from closeloop.contracts.codec import DecodeError, decode, encode
from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementChange, EntitlementEvent, EntitlementStatus, TicketRef
from closeloop.contracts.grants import GrantAction, GrantEvent, PrincipalStatusChanged, SnapshotMarker
from closeloop.contracts.identity import EntitlementKey, IdentityKind, canonical_ref
from closeloop.contracts.tickets import TicketEvent, TicketKind, TicketTransition

__all__ = [
    "CommandAction",
    "DecodeError",
    "DriftRule",
    "EntitlementChange",
    "EntitlementEvent",
    "EntitlementKey",
    "EntitlementStatus",
    "Envelope",
    "GrantAction",
    "GrantEvent",
    "IdentityKind",
    "PrincipalStatusChanged",
    "ProvisioningCommand",
    "Severity",
    "SnapshotMarker",
    "StrictModel",
    "TicketEvent",
    "TicketKind",
    "TicketRef",
    "TicketTransition",
    "canonical_ref",
    "decode",
    "encode",
]
