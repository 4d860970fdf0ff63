"""ServiceNow Table API records (sc_req_item, change_request, incident) to ticket observations.

Accepts one record, `{"result": record}` or `{"result": [records]}` (a Table API page), in the plain form
(strings, references as `{link, value}`) or the `sysparm_display_value=all` form (`{display_value, value}`).
The record does not carry its previous state: the handler diffs against the last seen one, ordered by
`sys_mod_count`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from closeloop.contracts.tickets import Approval, ApprovalDecision, TicketKind, TicketTransition
from closeloop.untrusted import UntrustedInput, as_bad_input, load_json
from request_intake.dates import parse_datetime
from request_intake.extract import first, resolve, scalar
from request_intake.facts import MappingContext, map_facts
from request_intake.mapping import Mapping, ServiceNowMapping, ServiceNowTable, fold
from request_intake.observation import CLOSED, TicketObservation, build_draft, ticket_event_id
from request_intake.problems import Invalid, Skipped, Unmappable

SYSTEM = "servicenow"

_APPROVER_DECISIONS = {
    "approved": ApprovalDecision.APPROVED,
    "rejected": ApprovalDecision.REJECTED,
    "requested": ApprovalDecision.REQUESTED,
    "not requested": ApprovalDecision.REQUESTED,
    "not yet requested": ApprovalDecision.REQUESTED,
}
# Approval records that no longer count (withdrawn or superseded) are left out.
_IGNORED_APPROVER_STATES = frozenset({"cancelled", "canceled", "no longer required", "skipped", "duplicate"})


def normalize_servicenow(payload: Any, mapping: Mapping) -> list[TicketObservation | Skipped | Invalid]:
    """One result per record; in a batch, a record that cannot be mapped is Invalid and the others go on.
    Raises Unmappable when no record of the delivery can be mapped."""
    results: list[TicketObservation | Skipped | Invalid] = []
    records = _records(payload)
    if not records:
        return [Skipped("empty_batch", "the delivery holds no record")]
    for where, record in records:
        try:
            results.append(as_bad_input(Unmappable, _unexpected, _normalize_one, record, mapping))
        except Unmappable as exc:
            results.append(Invalid(exc.within(where)))
    invalid = [r for r in results if isinstance(r, Invalid)]
    if len(invalid) == len(results):
        raise invalid[0].problem
    return results


def _unexpected(reason: str) -> Unmappable:
    return Unmappable("", reason)


def _normalize_one(record: Any, mapping: Mapping) -> TicketObservation | Skipped:
    if not isinstance(record, dict):
        raise Unmappable("", "a ServiceNow record must be a JSON object")
    return _normalize_record(record, mapping)


def _records(payload: Any) -> list[tuple[str, Any]]:
    if isinstance(payload, dict) and "result" in payload and "sys_id" not in payload:
        result = payload["result"]
        if isinstance(result, list):
            return [(f"result[{i}]", r) for i, r in enumerate(result)]
        return [("result", result)]
    if isinstance(payload, list):
        return [(f"[{i}]", r) for i, r in enumerate(payload)]
    if isinstance(payload, dict):
        return [("", payload)]
    raise Unmappable("<body>", "must be a ServiceNow record, a list of records or a Table API {result: ...} body")


def _value(record: dict[str, Any], name: str) -> str | None:
    return scalar(resolve(record, name))


def _date_value(record: dict[str, Any], name: str, sn: ServiceNowMapping) -> tuple[bool, datetime | None]:
    """(present, parsed) for a date field; `value` first, then `display_value` (instance format)."""
    node = resolve(record, name)
    if node in (None, ""):
        return False, None
    candidates = [node.get("value"), node.get("display_value")] if isinstance(node, dict) else [node]
    present = False
    for candidate in candidates:
        if candidate in (None, ""):
            continue
        present = True
        parsed = parse_datetime(candidate, zone=sn.zone, formats=sn.date_formats)
        if parsed is not None:
            return True, parsed
    return present, None


def _table(record: dict[str, Any], sn: ServiceNowMapping) -> str | None:
    table = _value(record, "sys_class_name") or _value(record, "table_name") or _value(record, "sys_target_table")
    if table:
        return table
    number = _value(record, "number") or ""
    for prefix, name in sn.number_prefixes.items():
        if number.upper().startswith(prefix.upper()):
            return name
    return None


def _phase(table: str, conf: ServiceNowTable, state: str, approval: str | None, stage: str | None) -> TicketTransition:
    phase = conf.states.get(state)
    if phase is None:
        raise Unmappable(
            "state", f"state {state!r} of {table} is not in the mapping (servicenow.tables.{table}.states)"
        )
    approval_phase = conf.approvals.get(fold(approval)) if approval else None
    if approval_phase is TicketTransition.REJECTED:
        return TicketTransition.REJECTED
    if phase is TicketTransition.CLOSED_COMPLETE and stage and fold(stage) in conf.cancelled_stages:
        # "Closed Complete" with stage "Request Cancelled": the request was cancelled, nothing was delivered.
        return TicketTransition.CLOSED_CANCELLED
    if phase is TicketTransition.REQUESTED and approval_phase is TicketTransition.APPROVED:
        return TicketTransition.APPROVED
    return phase


def _instance_base(record: dict[str, Any], sn: ServiceNowMapping) -> str | None:
    if sn.instance_url:
        return sn.instance_url.rstrip("/")
    for node in record.values():
        link = node.get("link") if isinstance(node, dict) else None
        if isinstance(link, str) and link.startswith(("https://", "http://")):
            parts = urlsplit(link)
            if parts.netloc:
                return f"{parts.scheme}://{parts.netloc}"
    return None


def parse_approvers(raw: Any, sn: ServiceNowMapping) -> tuple[Approval, ...]:
    """sysapproval_approver-like records: {approver, state, sys_updated_on}; a JSON string of them too."""
    if isinstance(raw, str):
        try:
            raw = load_json(raw)
        except UntrustedInput as exc:
            raise ValueError(f"expected a list of approval records (or its JSON), but the text {exc.reason}") from exc
    items = raw if isinstance(raw, list) else [raw]
    approvals = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("each approval must be an object")
        found = first(item, ("approver.email", "approver.user_name", "approver_email", "approver", "user"))
        if found is None:
            raise ValueError("an approval names no approver")
        state = fold(scalar(resolve(item, "state")) or scalar(item.get("decision")) or "requested")
        if state in _IGNORED_APPROVER_STATES:
            continue
        decision = _APPROVER_DECISIONS.get(state)
        if decision is None:
            raise ValueError(f"unknown approval state {state!r}")
        decided_at = None
        if decision is not ApprovalDecision.REQUESTED:
            when = scalar(resolve(item, "sys_updated_on")) or scalar(item.get("decided_at"))
            decided_at = parse_datetime(when, zone=sn.zone, formats=sn.date_formats) if when else None
        approver = found[1].lower() if "@" in found[1] else found[1]
        approvals.append(Approval(approver=approver, decision=decision, decided_at=decided_at))
    return tuple(approvals)


def _normalize_record(record: dict[str, Any], mapping: Mapping) -> TicketObservation | Skipped:
    sn = mapping.servicenow
    number = _value(record, "number")
    table = _table(record, sn)
    if table is None:
        return Skipped("unknown_table", "the record names no table and its number has no known prefix", number)
    conf = sn.tables.get(table)
    if conf is None:
        return Skipped("unsupported_table", f"table {table} is not mapped", number)

    has_updated, updated_at = _date_value(record, "sys_updated_on", sn)
    _, opened_at = _date_value(record, "opened_at", sn)
    catalog_item = first(record, sn.fields.catalog_item)
    kind_hint = sn.catalog_items.get(fold(catalog_item[1])) if catalog_item else None
    ctx = MappingContext(
        source=SYSTEM,
        paths=sn.fields,
        common=mapping.common,
        parse_date=lambda v: parse_datetime(v, zone=sn.zone, formats=sn.date_formats),
        parse_approvers=lambda raw: parse_approvers(raw, sn),
        anchor=opened_at or updated_at or datetime.now(UTC),
    )
    facts = map_facts(record, ctx, kind_hint=kind_hint, default_kind=conf.kind)
    if isinstance(facts, Skipped):
        return Skipped(facts.why, facts.detail, number)

    sys_id = _value(record, "sys_id")
    if sys_id is None:
        raise Unmappable("sys_id", "missing; the record's sys_id identifies the ticket")
    state = _value(record, "state")
    if state is None:
        raise Unmappable("state", "missing")
    approval, stage = _value(record, "approval"), _value(record, "stage")
    phase = _phase(table, conf, state, approval, stage)
    if updated_at is None:
        raise Unmappable(
            "sys_updated_on", "not a date this mapping can read" if has_updated else "missing; it dates the transition"
        )
    version = _version(record)
    vendor_state = " ".join(
        f"{name}={value}" for name, value in (("state", state), ("approval", approval), ("stage", stage)) if value
    )
    closed_at = None
    if phase in CLOSED:
        closed_at = _date_value(record, "closed_at", sn)[1] or updated_at
    if table == "incident" and facts.kind is TicketKind.EXCEPTION and facts.incident_ticket is None:
        # A break-glass incident is its own incident ticket.
        facts = replace(facts, incident_ticket=number or sys_id)
    base = _instance_base(record, sn)
    label = str(version) if version is not None else f"{updated_at.isoformat()}|{vendor_state}"
    event_id = ticket_event_id(SYSTEM, sys_id, label)
    draft = build_draft(
        facts,
        {"ticket_number": "number", "ticket_id": "sys_id", "state": "state", "actor": "sys_updated_by"},
        event_id=event_id,
        occurred_at=updated_at,
        source=f"servicenow://{urlsplit(base).netloc}" if base else SYSTEM,
        system=SYSTEM,
        ticket_id=sys_id,
        ticket_number=number or sys_id,
        ticket_url=f"{base}/{table}.do?sys_id={sys_id}" if base else None,
        table=table,
        transition=phase,
        state=vendor_state,
        version=version,
        actor=_value(record, "sys_updated_by"),
        closed_at=closed_at,
    )
    return TicketObservation(
        state_key=sys_id, phase=phase, vendor_state=vendor_state, version=version, updated_at=updated_at, draft=draft
    )


def _version(record: dict[str, Any]) -> int | None:
    raw = _value(record, "sys_mod_count")
    if raw is None:
        return None
    try:
        version = int(raw)
    except ValueError:
        raise Unmappable("sys_mod_count", "not an integer") from None
    if version < 0:
        raise Unmappable("sys_mod_count", "negative")
    return version
