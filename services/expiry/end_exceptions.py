"""Revoke break-glass access at the end of its window.

If the source has not confirmed the revoke within the SLA, `check_revoke_confirmations` announces
`exception_ended` (the reconciler raises EXCEPTION_EXPIRED) next to `revoke_unconfirmed`.
"""

from __future__ import annotations

from closeloop.record import repository
from expiry.context import ExpiryContext
from expiry.due_revocation import revoke_due


async def end_exceptions(ctx: ExpiryContext) -> tuple[int, int]:
    """One batch (rows locked with SKIP LOCKED). Returns (rows locked, revokes issued)."""
    return await revoke_due(ctx, repository.lock_exception_window_ended, "exception")
