"""Jira (Cloud and Server/DC) and Jira Service Management webhooks to ticket observations.

A transition is `jira:issue_updated` whose `changelog.items[]` has the `status` field; `jira:issue_created`
is the request itself and `jira:issue_deleted` withdraws it. Status ids map to canonical statuses by the
configured ids, else by `statusCategory.key`. Custom field ids differ on every site, so the access fields
always come from the mapping file. Ordering and dedupe: issue id + changelog id (Jira has no delivery id).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from closeloop.contracts.tickets import Approval, ApprovalDecision, TicketKind, TicketTransition
from request_intake.dates import parse_datetime
from request_intake.extract import first, first_raw, resolve, scalar
from request_intake.facts import MappingContext, map_facts
from request_intake.mapping import JiraMapping, Mapping, fold
from request_intake.observation import CLOSED, TicketObservation, build_draft, ticket_event_id
from request_intake.problems import Skipped, Unmappable

SYSTEM = "jira"
CREATED, UPDATED, DELETED = "jira:issue_created", "jira:issue_updated", "jira:issue_deleted"
SUPPORTED_EVENTS = frozenset({CREATED, UPDATED, DELETED})

_APPROVER_DECISIONS = {
    "approved": ApprovalDecision.APPROVED,
    "declined": ApprovalDecision.REJECTED,
    "rejected": ApprovalDecision.REJECTED,
    "pending": ApprovalDecision.REQUESTED,
}


def delivery_key(payload: Any) -> str | None:
    """Jira sends no delivery id: a delivery is identified by issue id + changelog id (+ event for the rest)."""
    if not isinstance(payload, dict):
        return None
    issue_id = scalar(resolve(payload, "issue.id"))
    if issue_id is None:
        return None
    changelog_id = scalar(resolve(payload, "changelog.id"))
    if changelog_id is not None:
        key = f"{issue_id}:{changelog_id}"
    else:
        event = scalar(payload.get("webhookEvent")) or "event"
        key = f"{issue_id}:{event}:{scalar(payload.get('timestamp')) or ''}"
    # Not a key PostgreSQL can store: no replay claim; the normalizer refuses such a body anyway.
    return key if "\x00" not in key and len(key) <= 300 else None


def _status_item(payload: dict[str, Any]) -> dict[str, Any] | None:
    items = resolve(payload, "changelog.items")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and (
            fold(scalar(item.get("field")) or "") == "status" or scalar(item.get("fieldId")) == "status"
        ):
            return item
    return None


def _resolution_name(payload: dict[str, Any], issue: dict[str, Any]) -> str | None:
    items = resolve(payload, "changelog.items")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and fold(scalar(item.get("field")) or "") == "resolution":
            return scalar(item.get("toString"))
    return scalar(resolve(issue, "fields.resolution.name"))


def _kind_hint(issue: dict[str, Any], jira: JiraMapping) -> TicketKind | None:
    request_type = first_raw(issue, jira.fields.request_type)
    if request_type is not None:
        raw = request_type[1]
        for name in (
            scalar(resolve(raw, "requestType.name")),
            scalar(resolve(raw, "requestType.id")),
            scalar(resolve(raw, "name")),
            scalar(raw) if isinstance(raw, str) else None,
        ):
            if name and fold(name) in jira.request_types:
                return jira.request_types[fold(name)]
    for name in (scalar(resolve(issue, "fields.issuetype.name")), scalar(resolve(issue, "fields.issuetype.id"))):
        if name and fold(name) in jira.issue_types:
            return jira.issue_types[fold(name)]
    project = scalar(resolve(issue, "fields.project.key"))
    if project and project.upper() in {p.upper() for p in jira.projects}:
        return TicketKind.ACCESS_REQUEST
    return None


def parse_approvals(raw: Any) -> tuple[Approval, ...]:
    """JSM approvals: [{finalDecision, approvers: [{approver: {...}, approverDecision}], completedDate}]."""
    items = raw if isinstance(raw, list) else [raw]
    approvals = []
    for approval in items:
        if not isinstance(approval, dict):
            raise ValueError("each approval must be an object")
        completed = parse_datetime(
            resolve(approval, "completedDate.epochMillis") or resolve(approval, "completedDate.iso8601")
        )
        entries = approval.get("approvers") or []
        if not isinstance(entries, list):
            raise ValueError("approvers must be a list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise ValueError("each approver must be an object")
            who = first(entry, ("approver.emailAddress", "approver.name", "approver.key", "approver.accountId"))
            if who is None:
                raise ValueError("an approval names no approver")
            said = fold(scalar(entry.get("approverDecision")) or scalar(approval.get("finalDecision")) or "pending")
            decision = _APPROVER_DECISIONS.get(said)
            if decision is None:
                raise ValueError(f"unknown approval decision {said!r}")
            approvals.append(
                Approval(
                    approver=who[1].lower() if "@" in who[1] else who[1],
                    decision=decision,
                    decided_at=completed if decision is not ApprovalDecision.REQUESTED else None,
                )
            )
    return tuple(approvals)


def _phase(
    payload: dict[str, Any], issue: dict[str, Any], item: dict[str, Any] | None, jira: JiraMapping
) -> TicketTransition:
    status = resolve(issue, "fields.status")
    status = status if isinstance(status, dict) else {}
    to_id = scalar(item.get("to")) if item else scalar(status.get("id"))
    phase = jira.statuses.get(to_id) if to_id else None
    if phase is None:
        snapshot_id = scalar(status.get("id"))
        category = scalar(resolve(status, "statusCategory.key"))
        if category is None or (to_id and snapshot_id and to_id != snapshot_id):
            raise Unmappable(
                "changelog.items[status].to" if item else "issue.fields.status",
                f"status {to_id!r} is not in jira.statuses and the issue's statusCategory does not describe it",
            )
        phase = jira.status_categories.get(category.lower())
        if phase is None:
            raise Unmappable("issue.fields.status.statusCategory.key", f"{category!r} is not in jira.status_categories")
    if phase is TicketTransition.CLOSED_COMPLETE:
        resolution = _resolution_name(payload, issue)
        if resolution and fold(resolution) in jira.rejected_resolutions:
            return TicketTransition.REJECTED
        if resolution and fold(resolution) in jira.cancelled_resolutions:
            return TicketTransition.CLOSED_CANCELLED
    return phase


def _site_base(issue: dict[str, Any], jira: JiraMapping) -> str | None:
    if jira.base_url:
        return jira.base_url.rstrip("/")
    self_link = scalar(issue.get("self"))
    if self_link and "/rest/api/" in self_link:
        return self_link.split("/rest/api/", 1)[0]
    return None


def normalize_jira(payload: Any, mapping: Mapping) -> list[TicketObservation | Skipped]:
    if not isinstance(payload, dict):
        raise Unmappable("<body>", "a Jira webhook body is a JSON object")
    event = scalar(payload.get("webhookEvent"))
    if event is None:
        raise Unmappable("webhookEvent", "missing; not a Jira webhook body")
    if event not in SUPPORTED_EVENTS:
        return [Skipped("unsupported_event", f"{event} is not an issue lifecycle event")]
    issue = payload.get("issue")
    if not isinstance(issue, dict):
        raise Unmappable("issue", "missing")
    return [_normalize_issue(payload, event, issue, mapping)]


def _normalize_issue(
    payload: dict[str, Any], event: str, issue: dict[str, Any], mapping: Mapping
) -> TicketObservation | Skipped:
    jira = mapping.jira
    key = scalar(issue.get("key"))
    item = _status_item(payload)
    if event == UPDATED and item is None:
        return Skipped("not_a_status_change", "the update changes no status", key)

    occurred_at = parse_datetime(payload.get("timestamp")) or parse_datetime(resolve(issue, "fields.updated"))
    ctx = MappingContext(
        source=SYSTEM,
        paths=jira.fields,
        common=mapping.common,
        parse_date=parse_datetime,
        parse_approvers=parse_approvals,
        anchor=parse_datetime(resolve(issue, "fields.created")) or occurred_at or datetime.now(UTC),
    )
    facts = map_facts(issue, ctx, kind_hint=_kind_hint(issue, jira), default_kind=TicketKind.ACCESS_REQUEST)
    if isinstance(facts, Skipped):
        return Skipped(facts.why, facts.detail, key)

    issue_id = scalar(issue.get("id"))
    if issue_id is None:
        raise Unmappable("issue.id", "missing; it identifies the ticket")
    if occurred_at is None:
        raise Unmappable("timestamp", "missing or unreadable, and issue.fields.updated too")
    if event == DELETED:
        phase, vendor_state = TicketTransition.CLOSED_CANCELLED, "deleted"
    else:
        phase = _phase(payload, issue, item, jira)
        vendor_state = (
            (scalar(item.get("toString")) or scalar(item.get("to")))
            if item
            else scalar(resolve(issue, "fields.status.name"))
        ) or phase.value
    version = _version(payload)
    from_id = scalar(item.get("from")) if item else None
    if event == DELETED:
        label = "deleted"
    elif version is not None:
        label = str(version)
    else:
        label = f"{event}|{occurred_at.isoformat()}|{vendor_state}"
    closed_at = None
    if phase in CLOSED:
        closed_at = parse_datetime(resolve(issue, "fields.resolutiondate")) or occurred_at
    base = _site_base(issue, jira)
    actor = first(payload, ("user.emailAddress", "user.name", "user.accountId", "user.key"))
    issue_type = scalar(resolve(issue, "fields.issuetype.name"))
    draft = build_draft(
        facts,
        {"ticket_number": "issue.key", "ticket_id": "issue.id", "state": "issue.fields.status", "table": "issuetype"},
        event_id=ticket_event_id(SYSTEM, issue_id, label),
        occurred_at=occurred_at,
        source=f"jira://{urlsplit(base).netloc}" if base else SYSTEM,
        system=SYSTEM,
        ticket_id=issue_id,
        ticket_number=key or issue_id,
        ticket_url=f"{base}/browse/{key}" if base and key else None,
        table=issue_type,
        transition=phase,
        state=vendor_state,
        version=version,
        actor=actor[1].lower() if actor and "@" in actor[1] else (actor[1] if actor else None),
        closed_at=closed_at,
    )
    return TicketObservation(
        state_key=issue_id,
        phase=phase,
        vendor_state=vendor_state,
        version=version,
        updated_at=occurred_at,
        draft=draft,
        previous_vendor_state=scalar(item.get("fromString")) if item else None,
        previous_phase_hint=jira.statuses.get(from_id) if from_id else None,
        reopened_hint=scalar(payload.get("issue_event_type_name")) == "issue_reopened",
    )


def _version(payload: dict[str, Any]) -> int | None:
    raw = scalar(resolve(payload, "changelog.id"))
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise Unmappable("changelog.id", "not a numeric changelog id")
    return int(raw)
