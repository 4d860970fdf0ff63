"""A connector snapshot story used by the unit and the Kafka tests of the sweep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from closeloop.contracts.alerts import AlertActivity, DriftRule
from closeloop.contracts.base import Envelope
from closeloop.contracts.entitlements import EntitlementStatus
from closeloop.contracts.grants import SnapshotPhase
from closeloop.contracts.identity import IdentityKind
from closeloop.contracts.tickets import TicketTransition
from tests.unit.reconciliation.scenarios import GRANTS, RECORDS, TICKETS, grant, key, marker, record, ticket


@dataclass(frozen=True)
class SnapshotStory:
    before: list[tuple[str, Envelope]]
    snapshot: list[tuple[str, Envelope]]
    # (key, rule, activity) records expected in total, in any order.
    expected: set[tuple[str, DriftRule, AlertActivity]]
    before_alerts: int


def snapshot_story(base: datetime, tag: str) -> SnapshotStory:
    hour_ago = base - timedelta(hours=1)
    group = f"okta:group:00gsnap{tag}"
    approved_gone = key(f"okta:user:a.{tag}@example.com", group, "member")
    unticketed_gone = key(f"okta:user:b.{tag}@example.com", group, "member")
    listed_unknown = key(f"okta:user:c.{tag}@example.com", group, "member")
    listed_approved = key(f"okta:user:d.{tag}@example.com", group, "member")
    record_only_gone = key(f"okta:user:svc-e.{tag}@example.com", group, "member")
    granted_during = key(f"okta:user:f.{tag}@example.com", group, "member")
    other_system = key(f"github:user:g-{tag}", f"github:repo:example/snap-{tag}", "write")
    snapshot_id = f"snap-{tag}"
    nhi = IdentityKind.SERVICE_ACCOUNT
    before: list[tuple[str, Envelope]] = [
        (TICKETS, ticket(approved_gone, TicketTransition.APPROVED, hour_ago, ticket_id=f"a-{tag}")),
        (GRANTS, grant(approved_gone, hour_ago)),
        (GRANTS, grant(unticketed_gone, hour_ago)),
        (TICKETS, ticket(listed_approved, TicketTransition.APPROVED, hour_ago, ticket_id=f"d-{tag}")),
        (TICKETS, ticket(record_only_gone, TicketTransition.APPROVED, hour_ago, ticket_id=f"e-{tag}", for_kind=nhi)),
        (RECORDS, record(record_only_gone, hour_ago, kind=nhi, owner=None, status=EntitlementStatus.ACTIVE)),
        (GRANTS, grant(other_system, hour_ago)),
    ]
    started = base + timedelta(milliseconds=100)
    snapshot: list[tuple[str, Envelope]] = [
        (GRANTS, marker(snapshot_id, SnapshotPhase.STARTED, started, "okta:*:*")),
        (GRANTS, grant(listed_unknown, started + timedelta(milliseconds=10), snapshot_id=snapshot_id)),
        (GRANTS, grant(listed_approved, started + timedelta(milliseconds=20), snapshot_id=snapshot_id)),
        (GRANTS, grant(granted_during, started + timedelta(milliseconds=30))),
        (GRANTS, marker(snapshot_id, SnapshotPhase.COMPLETED, started + timedelta(milliseconds=50), "okta:*:*")),
    ]
    create, close = AlertActivity.CREATE, AlertActivity.CLOSE
    expected = {
        (str(unticketed_gone), DriftRule.UNTICKETED_GRANT, create),
        (str(unticketed_gone), DriftRule.UNTICKETED_GRANT, close),
        (str(record_only_gone), DriftRule.NO_OWNER, create),
        (str(record_only_gone), DriftRule.NO_OWNER, close),
        (str(other_system), DriftRule.UNTICKETED_GRANT, create),
        (str(listed_unknown), DriftRule.UNTICKETED_GRANT, create),
        (str(granted_during), DriftRule.UNTICKETED_GRANT, create),
    }
    return SnapshotStory(before, snapshot, expected, before_alerts=3)
