"""Revoke what reached its TTL: status `revoking` (change `expired`) and a revoke command, per entitlement."""

from __future__ import annotations

from closeloop.record import repository
from expiry.context import ExpiryContext
from expiry.due_revocation import revoke_due


async def expire_entitlements(ctx: ExpiryContext) -> tuple[int, int]:
    """One batch (rows locked with SKIP LOCKED). Returns (rows locked, revokes issued)."""
    return await revoke_due(ctx, repository.lock_expired, "expire")
