"""Generic ITSM tools: a CloudEvents 1.0 structured-mode event whose `data` is a ticket in closeloop's shape.

For tools without a dedicated normalizer (or a customer's own integration). The envelope is CloudEvents 1.0
(`specversion`, `id`, `source`, `type`, optional `time`); `data` is validated strictly (it is our format, so
unknown keys are errors). Ticket ids are scoped by the CloudEvents `source`, so two tools cannot collide.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from closeloop.contracts.codec import describe_validation_error
from closeloop.contracts.tickets import Approval, TicketKind, TicketTransition
from request_intake.dates import parse_datetime
from request_intake.facts import MappingContext, map_facts
from request_intake.mapping import FieldPaths, Mapping, fold
from request_intake.observation import CLOSED, TicketObservation, build_draft, ticket_event_id
from request_intake.problems import Skipped, Unmappable

SYSTEM = "generic"

# The data fields map one-to-one onto the logical mapping fields (paths from the event's root).
GENERIC_PATHS = FieldPaths(
    requested_for=("data.requested_for",),
    requested_for_kind=("data.requested_for_kind",),
    access_system=("data.access_system",),
    access_resource=("data.access_resource",),
    access_privilege=("data.access_privilege",),
    access_duration=("data.access_duration",),
    access_until=("data.access_until",),
    access_owner=("data.access_owner",),
    request_kind=("data.request_kind",),
    business_justification=("data.business_justification",),
    project=("data.project",),
    incident=("data.incident",),
    window_start=("data.window_start",),
    window_end=("data.window_end",),
    requested_by=("data.requested_by",),
    approvers=("data.approvers",),
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CloudEvent(BaseModel):
    """CloudEvents 1.0 structured mode; extension attributes are allowed (and ignored)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = Field(pattern=r"^1\.0$")
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str = Field(min_length=1, max_length=200)
    time: AwareDatetime | None = None
    subject: str | None = None
    datacontenttype: str | None = None
    data: dict[str, Any]


class GenericApproval(_Strict):
    approver: str = Field(min_length=1, max_length=300)
    decision: str = Field(pattern=r"^(approved|rejected|requested)$")
    decided_at: AwareDatetime | None = None


class GenericTicket(_Strict):
    ticket_id: str = Field(min_length=1, max_length=200)
    ticket_number: str | None = Field(default=None, max_length=100)
    ticket_url: str | None = Field(default=None, max_length=2000)
    record_type: str | None = Field(default=None, max_length=100)
    # The ticket's canonical status now; when absent, `state` is looked up in generic.states.
    status: TicketTransition | None = None
    state: str = Field(min_length=1, max_length=200)
    version: int | None = Field(default=None, ge=0)
    updated_at: AwareDatetime | None = None
    actor: str | None = Field(default=None, max_length=300)
    request_kind: str | None = None
    requested_for: str | None = None
    requested_for_kind: str | None = None
    access_system: str | None = None
    access_resource: str | None = None
    access_privilege: str | None = None
    access_duration: str | None = None
    access_until: str | None = None
    access_owner: str | None = None
    business_justification: str | None = None
    project: str | None = None
    incident: str | None = None
    window_start: str | None = None
    window_end: str | None = None
    requested_by: str | None = None
    approvers: list[GenericApproval] = Field(default_factory=list)


def _validation_problem(exc: ValidationError, prefix: str) -> Unmappable:
    error = exc.errors(include_url=False, include_input=False)[0]
    loc = ".".join(str(p) for p in error["loc"])
    return Unmappable(f"{prefix}{loc}" if loc else prefix.rstrip(".") or "<body>", describe_validation_error(exc))


def _approvals(raw: Any) -> tuple[Approval, ...]:
    return tuple(Approval.model_validate(a) for a in raw)


def normalize_generic(payload: Any, mapping: Mapping) -> list[TicketObservation | Skipped]:
    if not isinstance(payload, dict):
        raise Unmappable("<body>", "a CloudEvents 1.0 structured event is a JSON object")
    try:
        envelope = CloudEvent.model_validate(payload)
    except ValidationError as exc:
        raise _validation_problem(exc, "") from exc
    try:
        ticket = GenericTicket.model_validate(envelope.data)
    except ValidationError as exc:
        raise _validation_problem(exc, "data.") from exc
    return [_observe(envelope, ticket, mapping)]


def _observe(envelope: CloudEvent, ticket: GenericTicket, mapping: Mapping) -> TicketObservation | Skipped:
    number = ticket.ticket_number or ticket.ticket_id
    occurred_at = envelope.time or ticket.updated_at
    data = ticket.model_dump(mode="json", exclude_none=True)
    data["approvers"] = [a.model_dump(mode="json") for a in ticket.approvers] or None
    ctx = MappingContext(
        source=SYSTEM,
        paths=GENERIC_PATHS,
        common=mapping.common,
        parse_date=parse_datetime,
        parse_approvers=_approvals,
        anchor=occurred_at or datetime.now(UTC),
    )
    facts = map_facts({"data": data}, ctx, kind_hint=None, default_kind=TicketKind.ACCESS_REQUEST)
    if isinstance(facts, Skipped):
        return Skipped(facts.why, facts.detail, f"{envelope.source}#{number}")
    if occurred_at is None:
        raise Unmappable("time", "missing; give the CloudEvents `time` or data.updated_at")
    phase = ticket.status or mapping.generic.states.get(fold(ticket.state))
    if phase is None:
        try:
            phase = TicketTransition(fold(ticket.state).replace(" ", "_"))
        except ValueError:
            raise Unmappable(
                "data.state", "not a canonical status and not in generic.states; or give data.status"
            ) from None
    state_key = f"{envelope.source}#{ticket.ticket_id}"
    label = str(ticket.version) if ticket.version is not None else f"ce:{envelope.id}"
    origins = {f: f"data.{f}" for f in ("ticket_id", "ticket_number", "ticket_url", "state", "actor")}
    draft = build_draft(
        facts,
        origins,
        event_id=ticket_event_id(SYSTEM, state_key, label),
        occurred_at=occurred_at,
        source=envelope.source,
        system=SYSTEM,
        ticket_id=ticket.ticket_id,
        ticket_number=number,
        ticket_url=ticket.ticket_url,
        table=ticket.record_type,
        transition=phase,
        state=ticket.state,
        version=ticket.version,
        actor=ticket.actor,
        closed_at=occurred_at if phase in CLOSED else None,
    )
    return TicketObservation(
        state_key=state_key,
        phase=phase,
        vendor_state=ticket.state,
        version=ticket.version,
        updated_at=ticket.updated_at or occurred_at,
        draft=draft,
    )
