"""Fold one grant observation into an entitlement's join state (pure).

A real grant or revoke is a change; a snapshot grant (`snapshot_id` set) only says "live at that time". The
latest fact by event time wins, so a late, older event cannot resurrect or end a grant.
"""

from __future__ import annotations

from closeloop.contracts.grants import CredentialFact, GrantAction, GrantEvent
from closeloop.contracts.identity import IdentityKind
from reconciliation.state import ActorFact, ChangeFact, CredentialState, EntitlementState, GrantFact


def credential_state(fact: CredentialFact | None, prev: CredentialState | None) -> CredentialState | None:
    """The newest credential facts: a fact about another credential replaces; the same one merges."""
    if fact is None:
        return prev
    new = CredentialState(
        credential_id=fact.credential_id,
        credential_type=fact.credential_type,
        created_at=fact.created_at,
        rotated_at=fact.rotated_at,
        status=fact.status,
    )
    if prev is None or prev.credential_id != fact.credential_id:
        return new
    return new.model_copy(
        update={
            "created_at": new.created_at or prev.created_at,
            "rotated_at": max((t for t in (new.rotated_at, prev.rotated_at) if t is not None), default=None),
        }
    )


def _change(event: GrantEvent) -> ChangeFact:
    actor = event.actor
    return ChangeFact(
        action=event.action,
        occurred_at=event.occurred_at,
        event_id=event.event_id,
        vendor_event_id=event.vendor_event_id,
        vendor_event_type=event.vendor_event_type,
        actor=ActorFact(id=actor.id, name=actor.name, kind=actor.kind, is_automation=actor.is_automation)
        if actor
        else None,
        command_id=event.command_id,
    )


def apply_grant(state: EntitlementState, event: GrantEvent) -> EntitlementState:
    prev = state.grant
    at = event.occurred_at
    kind = event.principal_kind if event.principal_kind != IdentityKind.UNKNOWN else None
    common = {
        "source_system": event.source_system,
        "principal_kind": kind or (prev.principal_kind if prev else IdentityKind.UNKNOWN),
        "resource_type": event.resource_type or (prev.resource_type if prev else None),
        "resource_name": event.resource_name or (prev.resource_name if prev else None),
        "credential": credential_state(event.credential, prev.credential if prev else None),
        "source_expires_at": event.expires_at or (prev.source_expires_at if prev else None),
    }
    stale = prev is not None and at < prev.last_event_at
    listing = event.snapshot_id is not None and event.action == GrantAction.GRANT

    if prev is None:
        if event.action == GrantAction.REVOKE:
            grant = GrantFact(
                live=False,
                last_event_at=at,
                ended_at=at,
                ended_event_id=event.event_id,
                last_change=_change(event),
                **common,
            )
        else:
            grant = GrantFact(
                live=True,
                last_event_at=at,
                live_since=at,
                live_event_id=event.event_id,
                live_vendor_event_type=event.vendor_event_type,
                live_via_snapshot=listing,
                last_change=None if listing else _change(event),
                last_snapshot_id=event.snapshot_id,
                last_seen_at=at,
                **common,
            )
        return state.model_copy(update={"grant": grant})

    if listing:
        seen = {"last_snapshot_id": event.snapshot_id, "last_seen_at": max(at, prev.last_seen_at or at)}
        if prev.live or stale:
            # Still live (or the listing is older than a later revoke): only note that the snapshot saw it.
            return state.model_copy(update={"grant": prev.model_copy(update={**common, **seen})})
        grant = prev.model_copy(
            update={
                **common,
                **seen,
                "live": True,
                "last_event_at": at,
                "live_since": at,
                "live_event_id": event.event_id,
                "live_vendor_event_type": event.vendor_event_type,
                "live_via_snapshot": True,
                "ended_at": None,
                "ended_event_id": None,
                "gone_by_snapshot": None,
            }
        )
        return state.model_copy(update={"grant": grant})

    if stale:
        # An older change arriving late: it cannot change liveness, but its credential facts still count.
        return state.model_copy(update={"grant": prev.model_copy(update=common)})

    change = _change(event)
    if event.action == GrantAction.GRANT:
        if prev.live:
            update: dict[str, object] = {**common, "last_event_at": at, "last_change": change, "last_seen_at": at}
            if prev.live_via_snapshot:
                # The first real grant event is better evidence than the listing that showed it first.
                update |= {
                    "live_event_id": event.event_id,
                    "live_vendor_event_type": event.vendor_event_type,
                    "live_via_snapshot": False,
                }
            return state.model_copy(update={"grant": prev.model_copy(update=update)})
        grant = prev.model_copy(
            update={
                **common,
                "live": True,
                "last_event_at": at,
                "live_since": at,
                "live_event_id": event.event_id,
                "live_vendor_event_type": event.vendor_event_type,
                "live_via_snapshot": False,
                "ended_at": None,
                "ended_event_id": None,
                "gone_by_snapshot": None,
                "last_change": change,
                "last_seen_at": at,
            }
        )
        return state.model_copy(update={"grant": grant})

    grant = prev.model_copy(
        update={
            **common,
            "live": False,
            "last_event_at": at,
            "ended_at": at,
            "ended_event_id": event.event_id,
            "last_change": change,
        }
    )
    return state.model_copy(update={"grant": grant})
