"""Build the OCSF Detection Finding (class 2004) for one alert change.

Mapping (OCSF 1.7.0):
- `finding_info`: uid (deterministic per entitlement key + rule), title, `types` with the rule code, the
  `analytic` (the rule), ATT&CK `attacks` where a technique fits, control mappings as `tags`, the related
  events (the grant, ticket, record and status events behind the finding), first/last seen times;
- `activity_id` Create / Update / Close, `status_id` New / Resolved, `severity_id` from the rule;
- `evidences`: the grant event and the ticket events, or a statement that none exists; the record and the
  identity's status when they matter;
- `resources`: the resource the privilege is on (target) and the identity holding it (affected);
- `actor` (host profile, declared in `metadata.profiles`): who made the grant at the source, when known;
- `tickets` (incident profile, declared in `metadata.profiles`): the OCSF ticket objects;
- `unmapped.closeloop`: rule code, entitlement key, revision and control mappings, for consumers that filter
  without parsing OCSF.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from closeloop.contracts.alerts import (
    DEFAULT_SEVERITY,
    DETECTION_FINDING_CLASS_UID,
    RULE_TITLES,
    SEVERITY_ID,
    AlertActivity,
    AlertStatus,
)
from closeloop.contracts.identity import IdentityKind, split_ref
from closeloop.contracts.tickets import TicketTransition
from reconciliation.controls import ATTACK_VERSION, CONTROLS
from reconciliation.join_engine import Emission
from reconciliation.rules.base import Evidence, JoinView
from reconciliation.state import ActorFact, GrantFact, RecordFact, TicketFact

FINDINGS_CATEGORY_UID = 2
SEVERITY_CAPTIONS = {2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
STATUS_CAPTIONS = {AlertStatus.NEW: "New", AlertStatus.RESOLVED: "Resolved"}
TICKET_STATUS: dict[TicketTransition, tuple[int, str]] = {
    TicketTransition.REQUESTED: (1, "New"),
    TicketTransition.APPROVED: (2, "In Progress"),
    TicketTransition.IN_FULFILMENT: (2, "In Progress"),
    TicketTransition.FULFILLED: (5, "Resolved"),
    TicketTransition.CLOSED_COMPLETE: (6, "Closed"),
    TicketTransition.CLOSED_CANCELLED: (7, "Canceled"),
    TicketTransition.REJECTED: (7, "Canceled"),
    TicketTransition.REOPENED: (8, "Reopened"),
}
USER_TYPE: dict[IdentityKind, tuple[int, str]] = {
    IdentityKind.HUMAN: (1, "User"),
    IdentityKind.UNKNOWN: (0, "Unknown"),
}
SERVICE_USER = (4, "Service")


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


_CONTAINERS = (dict, list, tuple)


def _clean(value: Any) -> Any:
    """Drop None values and empty containers, recursively (OCSF omits what is unknown)."""
    if type(value) is dict:
        cleaned = {}
        for k, v in value.items():
            if v is None:
                continue
            if type(v) in _CONTAINERS:
                v = _clean(v)
                if not v:
                    continue
            cleaned[k] = v
        return cleaned
    if type(value) in (list, tuple):
        return [_clean(v) if type(v) in _CONTAINERS else v for v in value if v is not None]
    return value


def _user(uid: str, kind: IdentityKind, name: str | None = None) -> dict[str, Any]:
    type_id, type_caption = USER_TYPE.get(kind, SERVICE_USER)
    try:
        system, _, ref_id = split_ref(uid)
    except ValueError:
        system, ref_id = None, uid
    return {
        "uid": uid,
        "name": name or ref_id,
        "type_id": type_id,
        "type": type_caption,
        "domain": system,
        "email_addr": ref_id if "@" in ref_id and " " not in ref_id else None,
    }


def _actor(actor: ActorFact) -> dict[str, Any]:
    return {"user": _user(actor.id, actor.kind, actor.name), "invoked_by": "automation" if actor.automated else None}


def _ticket_object(ticket: TicketFact) -> dict[str, Any]:
    status_id, status = TICKET_STATUS[ticket.transition]
    return {
        "uid": ticket.ticket_number,
        "src_url": ticket.ticket_url,
        "title": f"{ticket.kind.value} {ticket.ticket_number}",
        "status_id": status_id,
        "status": status,
        "status_details": [f"{ticket.system} state {ticket.state}"],
        "type_id": 2,
        "type": "External",
    }


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _grant_data(grant: GrantFact) -> dict[str, Any]:
    change = grant.last_change
    return {
        "live": grant.live,
        "source_system": grant.source_system,
        "live_since": _dt(grant.live_since),
        "observed_via": "snapshot" if grant.live_via_snapshot else "event",
        "vendor_event_type": grant.live_vendor_event_type,
        "ended_at": _dt(grant.ended_at),
        "gone_by_snapshot": grant.gone_by_snapshot,
        "last_change": {
            "action": change.action.value,
            "at": _dt(change.occurred_at),
            "event_id": change.event_id,
            "vendor_event_id": change.vendor_event_id,
            "vendor_event_type": change.vendor_event_type,
            "command_id": change.command_id,
        }
        if change
        else None,
        "credential": grant.credential.model_dump(mode="json", exclude_none=True) if grant.credential else None,
    }


def _ticket_data(ticket: TicketFact) -> dict[str, Any]:
    return {
        "system": ticket.system,
        "ticket_number": ticket.ticket_number,
        "kind": ticket.kind.value,
        "transition": ticket.transition.value,
        "state": ticket.state,
        "requested": {"resource": ticket.resource, "privilege": ticket.privilege},
        "approved_at": _dt(ticket.approved_at),
        "fulfilled_at": _dt(ticket.fulfilled_at),
        "closed_at": _dt(ticket.closed_at),
        "valid_until": _dt(ticket.valid_until),
        "owner": ticket.owner,
        "url": ticket.ticket_url,
    }


def _record_data(record: RecordFact) -> dict[str, Any]:
    return {
        "status": record.status.value,
        "change": record.change,
        "owner": record.owner,
        "tickets": list(record.ticket_numbers),
        "expires_at": _dt(record.expires_at),
        "recertification_due_at": _dt(record.recertification_due_at),
        "revoke_confirm_by": _dt(record.revoke_confirm_by),
        "record_version": record.record_version,
        "gone_at_source": record.gone_at_source,
    }


def _resources(view: JoinView) -> list[dict[str, Any]]:
    state = view.state
    grant = state.grant
    record = state.record
    system, ref_type, _ = split_ref(state.resource)
    owner = record.owner if record else None
    resource = {
        "uid": state.resource,
        "name": (grant.resource_name if grant else None) or state.resource,
        "type": (grant.resource_type if grant else None) or f"{system}:{ref_type}",
        "role_id": 1,
        "role": "Target",
        "owner": {"uid": owner, "name": owner} if owner else None,
        "labels": [f"privilege:{state.privilege}", f"system:{system}"],
        "data": {"entitlement_key": state.key, "privilege": state.privilege},
    }
    kind = state.principal_kind
    identity = {
        "uid": state.principal,
        "name": split_ref(state.principal)[2],
        "type": f"identity:{kind.value}",
        "role_id": 3,
        "role": "Affected",
        "labels": ["nhi" if kind.is_nhi else kind.value],
    }
    return [resource, identity]


def _evidences(view: JoinView, evidence: Evidence | None) -> list[dict[str, Any]]:
    state = view.state
    grant = state.grant
    principal_user = _user(state.principal, state.principal_kind)
    found: list[dict[str, Any]] = []
    include_grant = evidence.include_grant if evidence else True
    if include_grant:
        if grant is not None:
            change = grant.last_change
            found.append(
                {
                    "name": "grant",
                    "uid": grant.live_event_id or (change.event_id if change else None),
                    "user": principal_user,
                    "actor": _actor(change.actor) if change and change.actor else None,
                    "data": _grant_data(grant),
                }
            )
        else:
            found.append({"name": "grant", "user": principal_user, "data": {"statement": "no grant event observed"}})
    tickets = list(evidence.tickets) if evidence else []
    if not tickets and state.tickets:
        tickets = [state.tickets[0]]  # the most recent ticket, as context
    for ticket in tickets:
        found.append({"name": f"ticket {ticket.ticket_number}", "uid": ticket.event_id, "data": _ticket_data(ticket)})
    if not tickets:
        found.append({"name": "ticket", "data": {"statement": "no ticket names this entitlement"}})
    for statement in evidence.absent if evidence else ():
        found.append({"name": "absence", "data": {"statement": statement}})
    if state.record is not None and (evidence is None or evidence.include_record):
        found.append({"name": "entitlement record", "uid": state.record.event_id, "data": _record_data(state.record)})
    principal = view.principal
    if (
        principal is not None
        and principal.status is not None
        and (evidence is None or evidence.include_principal_status)
    ):
        found.append(
            {
                "name": "principal status",
                "uid": principal.status_event_id,
                "user": principal_user,
                "data": {
                    "status": principal.status.value,
                    "at": _dt(principal.status_at),
                    "source": principal.status_source,
                },
            }
        )
    return found


def _related_events(view: JoinView, evidence: Evidence | None) -> list[dict[str, Any]]:
    state = view.state
    related: list[dict[str, Any]] = []
    grant = state.grant
    if grant is not None and grant.live_event_id:
        related.append(
            {"uid": grant.live_event_id, "type": "iam.grant.changed", "desc": "grant observed at the source"}
        )
    if grant is not None and grant.last_change and grant.last_change.event_id != grant.live_event_id:
        related.append(
            {
                "uid": grant.last_change.event_id,
                "type": "iam.grant.changed",
                "desc": f"{grant.last_change.action.value}",
            }
        )
    for ticket in evidence.tickets if evidence else state.tickets[:1]:
        related.append(
            {
                "uid": ticket.event_id,
                "type": "itsm.ticket.transitioned",
                "desc": f"ticket {ticket.ticket_number} {ticket.transition.value}",
            }
        )
    if state.record is not None:
        related.append(
            {"uid": state.record.event_id, "type": "entitlement.changed", "desc": f"record {state.record.change}"}
        )
    trigger = view.trigger
    if trigger is not None and trigger.event_id and all(r["uid"] != trigger.event_id for r in related):
        related.append(
            {"uid": trigger.event_id, "type": trigger.event_type, "desc": "event that triggered this evaluation"}
        )
    return related


def build_finding(
    emission: Emission,
    *,
    version: str,
    product_version: str,
    log_name: str,
    data_sources: tuple[str, ...],
) -> dict[str, Any]:
    change, view = emission.change, emission.view
    state = view.state
    evidence = change.evidence
    rule = change.rule
    controls = CONTROLS[rule]
    severity_id = SEVERITY_ID[DEFAULT_SEVERITY[rule]]
    title = RULE_TITLES[rule]
    if change.activity == AlertActivity.CLOSE:
        message = f"Resolved: {title.lower()} no longer holds for {state.key}"
    else:
        message = evidence.message if evidence else title
    nhi = state.principal_kind.is_nhi
    owasp = controls.owasp_nhi if nhi else ()
    tags: list[dict[str, Any]] = [{"name": "NIST CSF 2.0", "values": list(controls.nist_csf)}]
    if owasp:
        tags.append({"name": "OWASP NHI Top 10 2025", "values": list(owasp)})
    tags += [{"name": name, "value": value} for name, value in controls.other]
    attacks = (
        [
            {
                "technique": {"uid": controls.technique.uid, "name": controls.technique.name},
                "tactic": {"uid": controls.technique.tactic_uid, "name": controls.technique.tactic_name},
                "version": ATTACK_VERSION,
            }
        ]
        if controls.technique
        else []
    )
    tickets = list(evidence.tickets) if evidence and evidence.tickets else list(state.tickets[:1])
    related = _related_events(view, evidence)
    trigger = view.trigger
    actor = state.grant.last_change.actor if state.grant and state.grant.last_change else None
    document: dict[str, Any] = {
        "class_uid": DETECTION_FINDING_CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": FINDINGS_CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": int(change.activity),
        "activity_name": change.activity.name.title(),
        "type_uid": DETECTION_FINDING_CLASS_UID * 100 + int(change.activity),
        "type_name": f"Detection Finding: {change.activity.name.title()}",
        "time": ms(change.at),
        "start_time": ms(change.opened_at),
        "end_time": ms(change.closed_at) if change.closed_at else None,
        "severity_id": severity_id,
        "severity": SEVERITY_CAPTIONS[severity_id],
        "status_id": int(change.status),
        "status": STATUS_CAPTIONS[change.status],
        "is_alert": change.activity != AlertActivity.CLOSE,
        "message": message,
        "metadata": {
            "version": version,
            "uid": change.event_id,
            "correlation_uid": (trigger.correlation_id if trigger else None) or change.uid,
            "sequence": change.revision,
            "log_name": log_name,
            "product": {"name": "closeloop", "vendor_name": "closeloop", "version": product_version},
            # Profiles whose attributes the finding uses: `host` for actor, `incident` for tickets.
            "profiles": [name for name, used in (("host", actor is not None), ("incident", bool(tickets))) if used],
            "labels": ["closeloop", rule.value],
        },
        "finding_info": {
            "uid": change.uid,
            "title": title,
            "desc": message,
            "types": [rule.value, "identity_drift"],
            "analytic": {
                "uid": f"closeloop.rule.{rule.value}",
                "name": rule.value,
                "type_id": 1,
                "type": "Rule",
                "category": "identity drift",
                "version": "1",
            },
            "attacks": attacks,
            "tags": tags,
            "created_time": ms(change.first_opened_at),
            "first_seen_time": ms(change.opened_at),
            "last_seen_time": ms(change.at),
            "modified_time": ms(change.at),
            "related_events": related,
            "related_events_count": len(related),
            "data_sources": list(data_sources),
        },
        "resources": _resources(view),
        "actor": _actor(actor) if actor else None,
        "evidences": _evidences(view, evidence),
        "tickets": [_ticket_object(t) for t in tickets],
        "remediation": {"desc": controls.remediation},
        "unmapped": {
            "closeloop": {
                "rule": rule.value,
                "entitlement_key": state.key,
                "principal": state.principal,
                "principal_kind": state.principal_kind.value,
                "resource": state.resource,
                "privilege": state.privilege,
                "revision": change.revision,
                "reopened": change.reopened,
                "facts": dict(evidence.facts) if evidence else {},
                "controls": {
                    "owasp_nhi_top10_2025": list(owasp),
                    "nist_csf_2_0": list(controls.nist_csf),
                    "mitre_attack": [controls.technique.uid] if controls.technique else [],
                },
            }
        },
    }
    cleaned: dict[str, Any] = _clean(document)
    return cleaned
