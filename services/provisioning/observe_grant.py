"""What every grant event teaches the record before its own handler runs: the latest state at the
source (for approvals that arrive after the grant) and the identity behind the principal."""

from __future__ import annotations

from closeloop.contracts.grants import GrantAction, GrantEvent
from closeloop.contracts.identity import IdentityKind
from closeloop.record import KEEP, Cause, RecordTransaction


async def observe(tx: RecordTransaction, event: GrantEvent, cause: Cause) -> bool:
    """Note the grant state and the identity; False when the event is older than what is known."""
    newer = await tx.observe_grant(
        event.key,
        live=event.action is GrantAction.GRANT,
        source_system=event.source_system,
        observed_at=event.occurred_at,
        vendor_event_id=event.vendor_event_id,
        command_id=event.command_id,
    )
    identity = await tx.load_identity(event.key.principal)
    aliases = set(event.principal_aliases) - {event.key.principal}
    learns_kind = event.principal_kind is not IdentityKind.UNKNOWN and (
        identity is None or identity.kind is IdentityKind.UNKNOWN
    )
    if identity is None or learns_kind or not aliases <= set(identity.aliases):
        await tx.upsert_identity(
            event.key.principal,
            cause=cause,
            kind=event.principal_kind if learns_kind or identity is None else KEEP,
            source_system=event.source_system if identity is None else KEEP,
            aliases=sorted(aliases),
        )
    return newer
