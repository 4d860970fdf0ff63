"""Snapshot sweep (pure): once a connector's full listing of a scope has completed, entitlements of that scope
that were live but not listed are gone at the source.

Only what was live before the listing started can be swept: a grant made while the listing ran may be missing
from it and still be live.
"""

from __future__ import annotations

from closeloop.contracts.identity import split_ref
from reconciliation.apply_record import LIVE_STATUSES
from reconciliation.state import EntitlementState, SnapshotProgress


def in_scope(state: EntitlementState, scope: str) -> bool:
    """`<system>:*:*` covers every resource of the system; anything else names one resource."""
    system, ref_type, ref_id = split_ref(scope)
    if ref_type == "*" and ref_id == "*":
        return split_ref(state.resource)[0] == system
    return state.resource == scope


def sweep_entitlement(state: EntitlementState, snapshot: SnapshotProgress) -> EntitlementState | None:
    """The state with the entitlement marked gone at the source, or None when the snapshot changes nothing."""
    if not in_scope(state, snapshot.scope):
        return None
    started = snapshot.started_at
    grant = state.grant
    if grant is not None:
        if not grant.live or grant.last_snapshot_id == snapshot.snapshot_id:
            return None
        if started is not None and grant.last_event_at >= started:
            return None  # changed while the listing ran: the listing cannot speak for it
        ended = started or grant.last_event_at
        return state.model_copy(
            update={
                "grant": grant.model_copy(
                    update={
                        "live": False,
                        "ended_at": ended,
                        "ended_event_id": None,
                        "gone_by_snapshot": snapshot.snapshot_id,
                    }
                )
            }
        )
    record = state.record
    if record is None or record.status not in LIVE_STATUSES or record.gone_at_source == snapshot.snapshot_id:
        return None
    if started is not None and record.occurred_at >= started:
        return None
    return state.model_copy(update={"record": record.model_copy(update={"gone_at_source": snapshot.snapshot_id})})
