"""Event builders and one drift scenario (plus its benign twin) per rule, shared by unit and integration tests.

A scenario is a list of inputs (topic role + event) whose event times are relative to a base time, and the
rule it must raise once the clock has passed `settle` (None: it must raise nothing). Keys carry a per-run tag
so scenarios through Kafka never see each other's state.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from closeloop.contracts.alerts import DriftRule
from closeloop.contracts.base import Envelope
from closeloop.contracts.directory import IdentityLinked, ResourceCatalogued
from closeloop.contracts.entitlements import (
    EntitlementChange,
    EntitlementEvent,
    EntitlementStatus,
    TicketRef,
)
from closeloop.contracts.grants import (
    Actor,
    CredentialFact,
    GrantAction,
    GrantEvent,
    PrincipalStatus,
    PrincipalStatusChanged,
    SnapshotMarker,
    SnapshotPhase,
)
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.contracts.tickets import (
    Approval,
    ApprovalDecision,
    RequestedAccess,
    TicketEvent,
    TicketKind,
    TicketReferences,
    TicketTransition,
)

# Grace windows used by the scenarios (short, so integration tests finish in seconds).
GRACE = timedelta(seconds=2)
TICKETS, GRANTS, RECORDS = "tickets", "grants", "records"
# The directory topics: what connectors and operators taught closeloop about names.
LINKS, CATALOG = "links", "catalog"


def key(principal: str, resource: str, privilege: str) -> EntitlementKey:
    return EntitlementKey(principal=principal, resource=resource, privilege=privilege)


def ticket(
    k: EntitlementKey | None,
    transition: TicketTransition,
    at: datetime,
    *,
    ticket_id: str,
    kind: TicketKind = TicketKind.ACCESS_REQUEST,
    requested_for: str | None = None,
    for_kind: IdentityKind = IdentityKind.HUMAN,
    owner: str | None = None,
    until: datetime | None = None,
    window_end: datetime | None = None,
    version: int | None = None,
    approver: bool = True,
) -> TicketEvent:
    approvals: tuple[Approval, ...] = ()
    if approver and transition == TicketTransition.APPROVED:
        approvals = (Approval(approver="manager@example.com", decision=ApprovalDecision.APPROVED, decided_at=at),)
    access = None
    if k is not None:
        access = RequestedAccess(system=k.system, resource=k.resource, privilege=k.privilege)
    closing = transition in (TicketTransition.CLOSED_COMPLETE, TicketTransition.CLOSED_CANCELLED)
    result: TicketEvent = TicketEvent.create(
        occurred_at=at,
        source="closeloop/request-intake",
        correlation_id=f"corr-{ticket_id}",
        system="servicenow",
        ticket_id=ticket_id,
        ticket_number=f"RITM{zlib.crc32(ticket_id.encode()) % 10_000_000:07d}",
        ticket_url=f"https://example.service-now.com/sc_req_item.do?sys_id={ticket_id}",
        table="sc_req_item",
        kind=kind,
        transition=transition,
        state=transition.value,
        version=version,
        requested_for=requested_for or (k.principal if k else None),
        requested_for_kind=for_kind,
        access=access,
        entitlement=k,
        requested_until=until,
        owner=owner,
        approvers=approvals,
        window_start=at if window_end else None,
        window_end=window_end,
        closed_at=at if closing else None,
    )
    return result


def grant(
    k: EntitlementKey,
    at: datetime,
    *,
    action: GrantAction = GrantAction.GRANT,
    kind: IdentityKind = IdentityKind.HUMAN,
    actor: Actor | None = None,
    credential: CredentialFact | None = None,
    snapshot_id: str | None = None,
    command_id: str | None = None,
) -> GrantEvent:
    result: GrantEvent = GrantEvent.create(
        occurred_at=at,
        source="okta://example.okta.com",
        correlation_id=f"corr-{uuid.uuid4().hex[:8]}",
        action=action,
        key=k,
        source_system=k.system,
        principal_kind=kind,
        actor=actor,
        vendor_event_id=uuid.uuid4().hex,
        vendor_event_type="group.user_membership.add"
        if action == GrantAction.GRANT
        else "group.user_membership.remove",
        credential=credential,
        snapshot_id=snapshot_id,
        command_id=command_id,
    )
    return result


def record(
    k: EntitlementKey,
    at: datetime,
    *,
    change: EntitlementChange = EntitlementChange.ACTIVATED,
    status: EntitlementStatus = EntitlementStatus.ACTIVE,
    kind: IdentityKind = IdentityKind.HUMAN,
    owner: str | None = "owner@example.com",
    expires_at: datetime | None = None,
    recert_due: datetime | None = None,
    revoke_confirm_by: datetime | None = None,
    version: int = 1,
    ticket_kind: str = "access_request",
) -> EntitlementEvent:
    result: EntitlementEvent = EntitlementEvent.create(
        occurred_at=at,
        source="closeloop/provisioning",
        correlation_id=f"corr-rec-{uuid.uuid4().hex[:8]}",
        key=k,
        change=change,
        status=status,
        principal_kind=kind,
        owner=owner,
        tickets=(TicketRef(system="servicenow", ticket_id="t-rec", ticket_number="RITM0000001", kind=ticket_kind),),
        granted_at=at,
        expires_at=expires_at,
        recertification_due_at=recert_due,
        revoke_requested_at=at if status == EntitlementStatus.REVOKING else None,
        revoke_confirm_by=revoke_confirm_by,
        record_version=version,
        source_system=k.system,
    )
    return result


def status(
    principal: str, at: datetime, value: PrincipalStatus, kind: IdentityKind = IdentityKind.HUMAN
) -> PrincipalStatusChanged:
    result: PrincipalStatusChanged = PrincipalStatusChanged.create(
        occurred_at=at,
        source="okta://example.okta.com",
        correlation_id=f"corr-st-{uuid.uuid4().hex[:8]}",
        principal=principal,
        principal_kind=kind,
        status=value,
        source_system=principal.split(":", 1)[0],
        vendor_event_id=uuid.uuid4().hex,
        vendor_event_type="user.lifecycle.deactivate",
    )
    return result


def marker(snapshot_id: str, phase: SnapshotPhase, at: datetime, scope: str, system: str = "okta") -> SnapshotMarker:
    result: SnapshotMarker = SnapshotMarker.create(
        occurred_at=at,
        source="okta://example.okta.com",
        correlation_id=f"corr-{snapshot_id}",
        snapshot_id=snapshot_id,
        phase=phase,
        source_system=system,
        scope=scope,
    )
    return result


@dataclass(frozen=True)
class Scenario:
    name: str
    expected: DriftRule | None
    inputs: list[tuple[str, Envelope]]
    # The alert is about this key (and only this one).
    subject: str
    # The clock must pass base + settle before the verdict is final (grace windows).
    settle: timedelta = field(default=timedelta(seconds=3))


Builder = Callable[[datetime, str], Scenario]


def _people(tag: str) -> tuple[str, str]:
    return f"okta:user:alice.{tag}@example.com", f"okta:group:00g{tag}"


def unticketed(base: datetime, tag: str, benign: bool) -> Scenario:
    user, group = _people(tag)
    k = key(user, group, "member")
    inputs: list[tuple[str, Envelope]] = []
    if benign:
        # The approval arrives after the grant, inside the grace window.
        inputs.append((GRANTS, grant(k, base)))
        inputs.append(
            (TICKETS, ticket(k, TicketTransition.APPROVED, base + timedelta(seconds=1), ticket_id=f"t-{tag}"))
        )
    else:
        inputs.append((GRANTS, grant(k, base)))
    return Scenario("unticketed", None if benign else DriftRule.UNTICKETED_GRANT, inputs, str(k))


def closed_not_removed(base: datetime, tag: str, benign: bool) -> Scenario:
    user, group = _people(tag)
    k = key(user, group, "member")
    earlier = base - timedelta(hours=1)
    inputs: list[tuple[str, Envelope]] = [
        (TICKETS, ticket(k, TicketTransition.APPROVED, earlier, ticket_id=f"ta-{tag}")),
        (GRANTS, grant(k, earlier + timedelta(minutes=1))),
        (
            TICKETS,
            ticket(
                k, TicketTransition.CLOSED_COMPLETE, base, ticket_id=f"tr-{tag}", kind=TicketKind.REVOCATION_REQUEST
            ),
        ),
    ]
    if benign:
        inputs.append((GRANTS, grant(k, base + timedelta(milliseconds=500), action=GrantAction.REVOKE)))
    return Scenario("closed_not_removed", None if benign else DriftRule.CLOSED_NOT_REMOVED, inputs, str(k))


def expired_still_live(base: datetime, tag: str, benign: bool) -> Scenario:
    user, group = _people(tag)
    k = key(user, group, "member")
    earlier = base - timedelta(days=2)
    ends = base + timedelta(days=30) if benign else base
    inputs: list[tuple[str, Envelope]] = [
        (TICKETS, ticket(k, TicketTransition.APPROVED, earlier, ticket_id=f"t-{tag}", until=ends)),
        (GRANTS, grant(k, earlier + timedelta(minutes=1))),
        (RECORDS, record(k, earlier + timedelta(minutes=1), expires_at=ends)),
    ]
    return Scenario("expired_still_live", None if benign else DriftRule.EXPIRED_STILL_LIVE, inputs, str(k))


def revoke_unconfirmed(base: datetime, tag: str, benign: bool) -> Scenario:
    user, group = _people(tag)
    k = key(user, group, "member")
    earlier = base - timedelta(days=2)
    inputs: list[tuple[str, Envelope]] = [
        (TICKETS, ticket(k, TicketTransition.APPROVED, earlier, ticket_id=f"t-{tag}")),
        (GRANTS, grant(k, earlier + timedelta(minutes=1))),
        (RECORDS, record(k, earlier + timedelta(minutes=1), version=1)),
    ]
    if benign:
        inputs += [
            (
                RECORDS,
                record(
                    k,
                    base,
                    change=EntitlementChange.REVOKE_REQUESTED,
                    status=EntitlementStatus.REVOKING,
                    revoke_confirm_by=base + timedelta(minutes=15),
                    version=2,
                ),
            ),
            (GRANTS, grant(k, base + timedelta(milliseconds=300), action=GrantAction.REVOKE)),
        ]
    else:
        inputs.append(
            (
                RECORDS,
                record(
                    k,
                    base,
                    change=EntitlementChange.REVOKE_UNCONFIRMED,
                    status=EntitlementStatus.REVOKING,
                    revoke_confirm_by=base - timedelta(minutes=1),
                    version=2,
                ),
            )
        )
    return Scenario("revoke_unconfirmed", None if benign else DriftRule.REVOKE_UNCONFIRMED, inputs, str(k))


def scope_exceeds(base: datetime, tag: str, benign: bool) -> Scenario:
    user = f"github:user:dev-{tag}"
    repo = f"github:repo:example/app-{tag}"
    approved = key(user, repo, "admin" if benign else "read")
    granted = key(user, repo, "write" if benign else "admin")
    inputs: list[tuple[str, Envelope]] = [
        (TICKETS, ticket(approved, TicketTransition.APPROVED, base - timedelta(minutes=5), ticket_id=f"t-{tag}")),
        (GRANTS, grant(granted, base)),
    ]
    return Scenario("scope_exceeds", None if benign else DriftRule.SCOPE_EXCEEDS_APPROVAL, inputs, str(granted))


def no_owner(base: datetime, tag: str, benign: bool) -> Scenario:
    principal = f"aws:role:arn:aws:iam::123456789012:role/ci-deployer-{tag}"
    k = key(principal, "aws:policy:arn:aws:iam::123456789012:policy/deploy", "attached")
    earlier = base - timedelta(hours=1)
    nhi = IdentityKind.SERVICE_ACCOUNT
    inputs: list[tuple[str, Envelope]] = [
        (TICKETS, ticket(k, TicketTransition.APPROVED, earlier, ticket_id=f"t-{tag}", for_kind=nhi)),
        (GRANTS, grant(k, earlier + timedelta(minutes=1), kind=nhi)),
        (
            RECORDS,
            record(k, earlier + timedelta(minutes=1), kind=nhi, owner="team-lead@example.com" if benign else None),
        ),
    ]
    return Scenario("no_owner", None if benign else DriftRule.NO_OWNER, inputs, str(k))


def no_expiry(base: datetime, tag: str, benign: bool) -> Scenario:
    user, _ = _people(tag)
    k = key(user, "okta:adminrole:SUPER_ADMIN", "assigned")
    earlier = base - timedelta(hours=1)
    expires = base + timedelta(days=7) if benign else None
    inputs: list[tuple[str, Envelope]] = [
        (TICKETS, ticket(k, TicketTransition.APPROVED, earlier, ticket_id=f"t-{tag}", until=expires)),
        (GRANTS, grant(k, earlier + timedelta(minutes=1))),
        (RECORDS, record(k, earlier + timedelta(minutes=1), expires_at=expires)),
    ]
    return Scenario("no_expiry", None if benign else DriftRule.NO_EXPIRY, inputs, str(k))


def recert_overdue(base: datetime, tag: str, benign: bool) -> Scenario:
    user, group = _people(tag)
    k = key(user, group, "member")
    earlier = base - timedelta(days=200)
    inputs: list[tuple[str, Envelope]] = [
        (TICKETS, ticket(k, TicketTransition.APPROVED, earlier, ticket_id=f"t-{tag}")),
        (GRANTS, grant(k, earlier + timedelta(minutes=1))),
    ]
    if benign:
        inputs.append((RECORDS, record(k, earlier, recert_due=base + timedelta(days=30))))
    else:
        inputs.append(
            (
                RECORDS,
                record(k, base, change=EntitlementChange.RECERTIFICATION_OVERDUE, recert_due=base - timedelta(days=1)),
            )
        )
    return Scenario("recert_overdue", None if benign else DriftRule.RECERT_OVERDUE, inputs, str(k))


def exception_expired(base: datetime, tag: str, benign: bool) -> Scenario:
    user, _ = _people(tag)
    k = key(user, "okta:adminrole:ORG_ADMIN", "assigned")
    start = base - timedelta(minutes=30)
    window_end = base + timedelta(seconds=1)
    inputs: list[tuple[str, Envelope]] = [
        (
            TICKETS,
            ticket(
                k,
                TicketTransition.APPROVED,
                start,
                ticket_id=f"t-{tag}",
                kind=TicketKind.EXCEPTION,
                window_end=window_end,
            ),
        ),
        (GRANTS, grant(k, start + timedelta(minutes=1))),
    ]
    if benign:
        inputs.append((GRANTS, grant(k, base + timedelta(milliseconds=500), action=GrantAction.REVOKE)))
    return Scenario("exception_expired", None if benign else DriftRule.EXCEPTION_EXPIRED, inputs, str(k))


def grant_to_inactive(base: datetime, tag: str, benign: bool) -> Scenario:
    user, group = _people(tag)
    k = key(user, group, "member")
    inputs: list[tuple[str, Envelope]] = [
        (
            GRANTS,
            status(
                user, base - timedelta(minutes=1), PrincipalStatus.ACTIVE if benign else PrincipalStatus.DEACTIVATED
            ),
        ),
        (TICKETS, ticket(k, TicketTransition.APPROVED, base - timedelta(seconds=30), ticket_id=f"t-{tag}")),
        (GRANTS, grant(k, base)),
    ]
    return Scenario("grant_to_inactive", None if benign else DriftRule.GRANT_TO_INACTIVE_PRINCIPAL, inputs, str(k))


def stale_credential(base: datetime, tag: str, benign: bool) -> Scenario:
    token = f"okta:apitoken:00T{tag}"
    k = key(token, "okta:org:example", "token")
    nhi = IdentityKind.API_TOKEN
    created = base - timedelta(days=200)
    rotated = base - timedelta(days=10) if benign else None
    credential = CredentialFact(
        credential_id=f"00T{tag}", credential_type="okta_api_token", created_at=created, rotated_at=rotated
    )
    inputs: list[tuple[str, Envelope]] = [
        (
            TICKETS,
            ticket(
                k, TicketTransition.APPROVED, created, ticket_id=f"t-{tag}", for_kind=nhi, owner="platform@example.com"
            ),
        ),
        (GRANTS, grant(k, created + timedelta(minutes=1), kind=nhi, credential=credential)),
    ]
    return Scenario("stale_credential", None if benign else DriftRule.STALE_CREDENTIAL, inputs, str(k))


def fulfilment_missing(base: datetime, tag: str, benign: bool) -> Scenario:
    user, group = _people(tag)
    k = key(user, group, "member")
    inputs: list[tuple[str, Envelope]] = [
        (TICKETS, ticket(k, TicketTransition.APPROVED, base - timedelta(minutes=5), ticket_id=f"t-{tag}", version=1)),
        (TICKETS, ticket(k, TicketTransition.FULFILLED, base, ticket_id=f"t-{tag}", version=2)),
    ]
    if benign:
        inputs.append((GRANTS, grant(k, base + timedelta(milliseconds=500))))
    return Scenario("fulfilment_missing", None if benign else DriftRule.FULFILMENT_MISSING, inputs, str(k))


def unreviewed_automation(base: datetime, tag: str, benign: bool) -> Scenario:
    user, group = _people(tag)
    k = key(user, group, "member")
    agent = Actor(
        id=f"okta:serviceaccount:agent-{tag}", name="access-agent", kind=IdentityKind.AI_AGENT, is_automation=True
    )
    inputs: list[tuple[str, Envelope]] = []
    if benign:
        inputs.append(
            (TICKETS, ticket(k, TicketTransition.APPROVED, base - timedelta(minutes=1), ticket_id=f"t-{tag}"))
        )
    inputs.append((GRANTS, grant(k, base, actor=agent)))
    return Scenario("unreviewed_automation", None if benign else DriftRule.UNREVIEWED_AUTOMATED_CHANGE, inputs, str(k))


def catalogued(resource: str, at: datetime, name: str | None = None) -> ResourceCatalogued:
    result: ResourceCatalogued = ResourceCatalogued.create(
        resource=resource,
        display_name=name,
        origin=resource.split(":", 1)[0],
        occurred_at=at,
        source="closeloop/test",
        correlation_id=f"corr-{uuid.uuid4().hex[:8]}",
    )
    return result


def linked(names: tuple[str, ...], at: datetime, *, accounts: tuple[str, ...], origin: str) -> IdentityLinked:
    result: IdentityLinked = IdentityLinked.create(
        names=names,
        accounts=accounts,
        origin=origin,
        identity_id=next((n.removeprefix("email:") for n in names if n.startswith("email:")), None)
        if origin == "operator"
        else None,
        occurred_at=at,
        source="closeloop/test",
        correlation_id=f"corr-{uuid.uuid4().hex[:8]}",
    )
    return result


def as_written(event: TicketEvent, principal: str, resource: str, person: str, written: str) -> TicketEvent:
    """The ticket as intake publishes it when it names things as people do: a provisional key, the names kept."""
    assert event.access is not None
    assert event.entitlement is not None
    k = key(principal, resource, event.access.privilege)
    result: TicketEvent = event.model_copy(
        update={
            "requested_for": principal,
            "access": event.access.model_copy(update={"resource": resource}),
            "entitlement": k,
            "subject": str(k),
            "references": TicketReferences(requested_for=person, resource=written),
        }
    )
    return result


def unresolved_reference(base: datetime, tag: str, benign: bool) -> Scenario:
    user, _ = _people(tag)
    name = f"Payroll Admins {tag}"
    canonical = key(user, f"okta:group:00gpay{tag}", "member")
    provisional = f"okta:group:{name}"
    approved = ticket(canonical, TicketTransition.APPROVED, base, ticket_id=f"t-{tag}")
    named = as_written(approved, user, provisional, user.split(":", 2)[2], name)
    inputs: list[tuple[str, Envelope]] = [(TICKETS, named)]
    if benign:
        # A connector (or the catalog file) teaches the name a moment later: the ticket binds, nothing fires.
        inputs.append((CATALOG, catalogued(canonical.resource, base + timedelta(milliseconds=500), name)))
    subject = str(named.entitlement)
    return Scenario("unresolved_reference", None if benign else DriftRule.UNRESOLVED_REFERENCE, inputs, subject)


def ambiguous_reference(base: datetime, tag: str, benign: bool) -> Scenario:
    user, _ = _people(tag)
    name = f"Finance {tag}"
    first, second = f"okta:group:00gfina{tag}", f"okta:group:00gfinb{tag}"
    inputs: list[tuple[str, Envelope]] = [
        (CATALOG, catalogued(first, base - timedelta(minutes=1), name)),
        (CATALOG, catalogued(second, base - timedelta(minutes=1), f"Finance EU {tag}" if benign else name)),
    ]
    approved = ticket(key(user, first, "member"), TicketTransition.APPROVED, base, ticket_id=f"t-{tag}")
    named = as_written(approved, user, f"okta:group:{name}", user.split(":", 2)[2], name)
    inputs.append((TICKETS, named))
    subject = str(named.entitlement)
    return Scenario("ambiguous_reference", None if benign else DriftRule.AMBIGUOUS_REFERENCE, inputs, subject)


SCENARIOS: dict[DriftRule, Callable[[datetime, str, bool], Scenario]] = {
    DriftRule.UNTICKETED_GRANT: unticketed,
    DriftRule.CLOSED_NOT_REMOVED: closed_not_removed,
    DriftRule.EXPIRED_STILL_LIVE: expired_still_live,
    DriftRule.REVOKE_UNCONFIRMED: revoke_unconfirmed,
    DriftRule.SCOPE_EXCEEDS_APPROVAL: scope_exceeds,
    DriftRule.NO_OWNER: no_owner,
    DriftRule.NO_EXPIRY: no_expiry,
    DriftRule.RECERT_OVERDUE: recert_overdue,
    DriftRule.EXCEPTION_EXPIRED: exception_expired,
    DriftRule.GRANT_TO_INACTIVE_PRINCIPAL: grant_to_inactive,
    DriftRule.STALE_CREDENTIAL: stale_credential,
    DriftRule.FULFILMENT_MISSING: fulfilment_missing,
    DriftRule.UNREVIEWED_AUTOMATED_CHANGE: unreviewed_automation,
    DriftRule.UNRESOLVED_REFERENCE: unresolved_reference,
    DriftRule.AMBIGUOUS_REFERENCE: ambiguous_reference,
}


def now() -> datetime:
    return datetime.now(UTC)
