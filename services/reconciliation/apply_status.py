"""Fold a principal status change into the principal's join state, and keep its entitlement index (pure)."""

from __future__ import annotations

from closeloop.contracts.grants import CredentialFact, PrincipalStatusChanged
from closeloop.contracts.identity import IdentityKind
from reconciliation.apply_grant import credential_state
from reconciliation.state import EntitlementState, PrincipalState


def apply_status(prev: PrincipalState | None, event: PrincipalStatusChanged) -> PrincipalState:
    base = prev or PrincipalState(principal=event.principal)
    kind = event.principal_kind if event.principal_kind != IdentityKind.UNKNOWN else base.kind
    if base.status_at is not None and event.occurred_at < base.status_at:
        return base.model_copy(update={"kind": kind})  # a late, older status change
    return base.model_copy(
        update={
            "kind": kind,
            "status": event.status,
            "status_at": event.occurred_at,
            "status_event_id": event.event_id,
            "status_source": event.source_system,
        }
    )


def index_key(prev: PrincipalState | None, principal: str, key: str) -> PrincipalState:
    """The principal's state with `key` in its entitlement index (the (principal, resource) view)."""
    base = prev or PrincipalState(principal=principal)
    if key in base.keys:
        return base
    return base.model_copy(update={"keys": tuple(sorted((*base.keys, key)))})


def apply_credential(state: EntitlementState, fact: CredentialFact) -> EntitlementState | None:
    """Credential facts from a status event, for the entitlement holding that credential (None: not this one)."""
    grant = state.grant
    if grant is None or grant.credential is None or grant.credential.credential_id != fact.credential_id:
        return None
    merged = credential_state(fact, grant.credential)
    if merged == grant.credential:
        return None
    return state.model_copy(update={"grant": grant.model_copy(update={"credential": merged})})
