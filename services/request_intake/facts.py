"""Apply a source's field mapping to one ticket record: kind, beneficiary, scope, duration, owner, approvers.

Shared by every vendor normalizer so that the same rules (what is access-related, what each kind must
carry, how names are canonicalised) hold whatever the source.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import isodate
from pydantic import ValidationError

from closeloop.contracts.codec import describe_validation_error
from closeloop.contracts.identity import EntitlementKey
from closeloop.contracts.tickets import Approval, RequestedAccess, TicketKind
from request_intake.canonical import (
    canonical_principal,
    canonical_resource,
    default_privilege,
    implied_identity_kind,
    normalize_system,
    parse_identity_kind,
    parse_kind,
)
from request_intake.dates import add_calendar
from request_intake.extract import first, first_raw
from request_intake.mapping import CommonMapping, FieldPaths
from request_intake.observation import TicketFacts
from request_intake.problems import Skipped, Unmappable

# Kinds that name one entitlement and so need a beneficiary and a scope.
KINDS_NEEDING_SCOPE = frozenset(
    {TicketKind.ACCESS_REQUEST, TicketKind.REVOCATION_REQUEST, TicketKind.EXCEPTION, TicketKind.RECERTIFICATION}
)
MAX_JUSTIFICATION = 4000
# What the entitlement key and the ticket event can hold (see closeloop.contracts.identity.EntitlementKey).
MAX_RESOURCE_CHARS = 800
MAX_PRINCIPAL_CHARS = 600
# About a century: no access is requested for longer, and start + duration stays a representable date.
MAX_REQUESTED_DURATION = timedelta(days=36525)

DateParser = Callable[[Any], datetime | None]
ApproverParser = Callable[[Any], tuple[Approval, ...]]


@dataclass(frozen=True)
class MappingContext:
    """What `map_facts` needs to know about the source besides the record itself."""

    source: str  # servicenow, jira, generic: names the mapping section in error messages
    paths: FieldPaths
    common: CommonMapping
    parse_date: DateParser
    parse_approvers: ApproverParser
    anchor: datetime  # start of a requested duration given in calendar units (P1M)


class _Reader:
    def __init__(self, record: Any, ctx: MappingContext) -> None:
        self.record = record
        self.ctx = ctx
        self.origins: dict[str, str] = {}

    def get(self, name: str, event_field: str | None = None) -> tuple[str, str] | None:
        found = first(self.record, getattr(self.ctx.paths, name))
        if found is not None and event_field is not None:
            self.origins[event_field] = found[0]
        return found

    def where(self, name: str) -> str:
        """The field to name in an error about logical field `name`."""
        paths: tuple[str, ...] = getattr(self.ctx.paths, name)
        if paths:
            return paths[0] if len(paths) == 1 else " | ".join(paths)
        return f"{name} (no field configured in the {self.ctx.source} mapping)"

    def missing(self, name: str, kind: TicketKind) -> Unmappable:
        return Unmappable(self.where(name), f"missing; required for {kind.value} tickets")


def _email_lower(value: str) -> str:
    return value.lower() if "@" in value else value


def parse_duration(text: str, anchor: datetime) -> timedelta:
    """ISO 8601 duration to a timedelta; calendar units (P1M, P1Y) are counted from `anchor`."""
    parsed = isodate.parse_duration(text)
    if isinstance(parsed, isodate.Duration):
        years, months = Decimal(parsed.years), Decimal(parsed.months)
        if years != int(years) or months != int(months):
            raise ValueError("fractional years or months are not supported")
        result = add_calendar(anchor, int(years), int(months), parsed.tdelta) - anchor
    else:
        result = parsed
    if result <= timedelta(0):
        raise ValueError("must be positive")
    if result > MAX_REQUESTED_DURATION:  # the end date must stay a date every consumer can compute
        raise ValueError(f"longer than {MAX_REQUESTED_DURATION.days} days")
    return result


def map_facts(
    record: Any, ctx: MappingContext, *, kind_hint: TicketKind | None, default_kind: TicketKind
) -> TicketFacts | Skipped:
    """The mapped facts of an access-related ticket, Skipped when it is not one, Unmappable when incomplete."""
    read = _Reader(record, ctx)
    common = ctx.common

    kind_field = read.get("request_kind")
    requested_for_field = read.get("requested_for", "requested_for")
    resource_field = read.get("access_resource", "access")
    if kind_field is not None:
        kind = parse_kind(kind_field[1], common)
        if kind is None:
            raise Unmappable(kind_field[0], "unknown request kind; add it to common.kind_aliases")
    elif kind_hint is not None:
        kind = kind_hint
    elif requested_for_field is not None or resource_field is not None:
        kind = default_kind
    else:
        return Skipped("not_access_related", "no request kind, beneficiary or resource is mapped on this ticket")

    system: str | None = None
    system_field = read.get("access_system")
    if system_field is not None:
        try:
            system = normalize_system(system_field[1], common)
        except ValueError as exc:  # NamingError, or a canonical_ref refusal
            raise Unmappable(system_field[0], str(exc)) from exc

    access: RequestedAccess | None = None
    if resource_field is not None:
        _edge_text(resource_field, MAX_RESOURCE_CHARS, "access resource")
        try:
            system, resource = canonical_resource(resource_field[1], system, common)
        except ValueError as exc:  # NamingError, or `|` in the id (the entitlement key's separator)
            raise Unmappable(resource_field[0], f"access resource {exc}") from exc
        privilege_field = read.get("access_privilege")
        privilege = privilege_field[1].strip().lower() if privilege_field else default_privilege(resource, common)
        if privilege is None:
            if kind in KINDS_NEEDING_SCOPE:
                raise read.missing("access_privilege", kind)
        else:
            access = RequestedAccess(system=system, resource=resource, privilege=privilege)
    elif kind in KINDS_NEEDING_SCOPE:
        raise read.missing("access_resource", kind)

    principal: str | None = None
    requested_for: str | None = None
    if requested_for_field is not None:
        _edge_text(requested_for_field, MAX_PRINCIPAL_CHARS, "requested_for")
        try:
            principal = canonical_principal(requested_for_field[1], system, common)
        except ValueError as exc:  # NamingError, or `|` in the id (the entitlement key's separator)
            raise Unmappable(requested_for_field[0], f"requested_for {exc}") from exc
        # The canonical principal when a system qualifies it (one identity string for every consumer),
        # else the beneficiary as written (emails lower-cased), e.g. an offboarding without access_system.
        requested_for = principal or _email_lower(requested_for_field[1])
    elif kind in KINDS_NEEDING_SCOPE or kind is TicketKind.OFFBOARDING:
        raise read.missing("requested_for", kind)

    identity_kind = implied_identity_kind(principal, common)
    kind_of_identity = read.get("requested_for_kind", "requested_for_kind")
    if kind_of_identity is not None:
        explicit = parse_identity_kind(kind_of_identity[1], common)
        if explicit is None:
            raise Unmappable(kind_of_identity[0], "unknown identity kind; add it to common.identity_kind_aliases")
        identity_kind = explicit

    project_field = read.get("project", "project")
    if kind is TicketKind.PROJECT_END and project_field is None:
        raise read.missing("project", kind)

    entitlement = None
    if principal is not None and access is not None:
        try:
            entitlement = EntitlementKey(principal=principal, resource=access.resource, privilege=access.privilege)
        except ValidationError as exc:
            field = resource_field[0] if resource_field else "<body>"
            raise Unmappable(field, f"no entitlement key: {describe_validation_error(exc)}") from exc

    owner = read.get("access_owner", "owner")
    justification = read.get("business_justification", "justification")
    incident = read.get("incident", "incident_ticket")
    requested_by = read.get("requested_by", "requested_by")
    window_start = _date(read, "window_start")
    window_end = _date(read, "window_end")
    requested_until = _date(read, "access_until", "requested_until")
    if requested_until is None and kind is TicketKind.EXCEPTION:
        # A break-glass window's end is when the exception's access must be gone.
        requested_until = window_end
    return TicketFacts(
        kind=kind,
        requested_for=requested_for,
        requested_for_kind=identity_kind,
        access=access,
        entitlement=entitlement,
        requested_duration=_duration(read),
        requested_until=requested_until,
        owner=_email_lower(owner[1]) if owner else None,
        approvers=_approvers(read),
        justification=_truncate(justification[1]) if justification else None,
        project=project_field[1] if project_field else None,
        incident_ticket=incident[1] if incident else None,
        window_start=window_start,
        window_end=window_end,
        requested_by=_email_lower(requested_by[1]) if requested_by else None,
        origins=read.origins,
    )


def _edge_text(found: tuple[str, str], max_chars: int, what: str) -> None:
    """Names are accepted as people write them, within what the entitlement key can hold: bounded, and
    without control characters (NUL and lone surrogates are refused when the body is read)."""
    where, value = found
    if len(value) > max_chars:
        raise Unmappable(where, f"{what} is longer than {max_chars} characters")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise Unmappable(where, f"{what} contains control characters")


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_JUSTIFICATION else text[: MAX_JUSTIFICATION - 1] + "…"


def _date(read: _Reader, name: str, event_field: str | None = None) -> datetime | None:
    found = read.get(name, event_field or name)
    if found is None:
        return None
    parsed = read.ctx.parse_date(found[1])
    if parsed is None:
        raise Unmappable(found[0], "not a date/time this mapping can read (ISO 8601 or a configured format)")
    return parsed


def _duration(read: _Reader) -> timedelta | None:
    found = read.get("access_duration", "requested_duration")
    if found is None:
        return None
    try:
        return parse_duration(found[1], read.ctx.anchor)
    except (isodate.ISO8601Error, ValueError, ArithmeticError) as exc:
        raise Unmappable(found[0], f"not a positive ISO 8601 duration such as P30D or PT8H ({exc})") from exc


def _approvers(read: _Reader) -> tuple[Approval, ...]:
    found = first_raw(read.record, read.ctx.paths.approvers)
    if found is None:
        return ()
    read.origins["approvers"] = found[0]
    try:
        return read.ctx.parse_approvers(found[1])
    except (ValueError, TypeError) as exc:
        raise Unmappable(found[0], f"approvers cannot be read: {exc}") from exc
