"""Absence findings wait for the counterpart input's watermark; a stalled input raises one INPUT_STALLED."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from closeloop.contracts.alerts import OCSF_VERSION, AlertActivity, DriftAlert, DriftRule
from closeloop.contracts.grants import GrantAction
from closeloop.contracts.progress import StreamProgress
from closeloop.contracts.tickets import TicketTransition
from reconciliation.input_stalled import STALL_PRINCIPAL
from reconciliation.join_engine import Emission, JoinEngine, JoinInput
from reconciliation.ocsf import build_finding
from reconciliation.ocsf_schema import validate_detection_finding
from reconciliation.routing import partition_for
from reconciliation.watermarks import GRANTS, TICKETS, WatermarkBook
from tests.unit.reconciliation.harness import PARTITIONS, POLICY, Harness, activities
from tests.unit.reconciliation.scenarios import GRACE, grant, key, ticket

BASE = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TOPICS = {"itsm.tickets.v1": TICKETS, "iam.grants.v1": GRANTS}
SOURCE_PARTITIONS = 2
ALLOWANCE = timedelta(seconds=5)


def book(started_at: datetime = BASE) -> WatermarkBook:
    return WatermarkBook(
        TOPICS,
        {TICKETS: SOURCE_PARTITIONS, GRANTS: SOURCE_PARTITIONS},
        allowances={TICKETS: ALLOWANCE, GRANTS: timedelta(0)},
        producer_expiry=timedelta(minutes=15),
        started_at=started_at,
    )


def progress(
    topic: str,
    partition: int,
    watermark: datetime,
    producer: str = "p@1",
    closing: bool = False,
    backfill: bool = False,
) -> StreamProgress:
    result: StreamProgress = StreamProgress.create(
        stream=topic,
        partition=partition,
        producer=producer,
        watermark=watermark,
        closing=closing,
        backfill=backfill,
        occurred_at=watermark,
        source="closeloop/test",
        correlation_id=producer,
    )
    return result


class GatedHarness(Harness):
    """The pure join with watermarks, fed progress copies on every join partition like the routers do."""

    def __post_init__(self) -> None:
        self.book = book()
        self.engine = JoinEngine(
            POLICY,
            snapshot_copies=PARTITIONS,
            settle=timedelta(milliseconds=300),
            watermarks=self.book,
            stall_limit=timedelta(minutes=1),
        )

    def advance(
        self, stream_topic: str, watermark: datetime, now: datetime, producer: str = "p@1", **flags: bool
    ) -> list[Emission]:
        emissions: list[Emission] = []
        for source in range(SOURCE_PARTITIONS):
            for partition in range(PARTITIONS):
                record = progress(stream_topic, source, watermark, producer, **flags)
                emissions += self._run(JoinInput("progress", partition, record, origin_partition=source), now)
        return emissions

    def both(self, watermark: datetime, now: datetime) -> list[Emission]:
        return self.advance("itsm.tickets.v1", watermark, now) + self.advance("iam.grants.v1", watermark, now)

    def watch(self, now: datetime) -> list[Emission]:
        return self._run(JoinInput("watch", partition_for(STALL_PRINCIPAL, PARTITIONS)), now)


def test_stream_watermark_is_unknown_until_every_partition_is_heard_then_the_lowest() -> None:
    marks = book()
    marks.observe(0, progress("itsm.tickets.v1", 0, BASE), BASE)
    assert marks.watermark(0, TICKETS, BASE) is None
    marks.observe(0, progress("itsm.tickets.v1", 1, BASE + timedelta(seconds=9)), BASE)
    assert marks.watermark(0, TICKETS, BASE) == BASE
    # A second producer on a partition (a replay holding it back) lowers it; its closing record lifts it again.
    marks.observe(0, progress("itsm.tickets.v1", 0, BASE + timedelta(seconds=9)), BASE)
    marks.observe(0, progress("itsm.tickets.v1", 0, BASE - timedelta(hours=1), producer="replay"), BASE)
    assert marks.watermark(0, TICKETS, BASE) == BASE - timedelta(hours=1)
    marks.observe(0, progress("itsm.tickets.v1", 0, BASE - timedelta(hours=1), producer="replay", closing=True), BASE)
    assert marks.watermark(0, TICKETS, BASE) == BASE + timedelta(seconds=9)
    # Other join partitions have their own copies; unknown streams are ignored.
    assert marks.watermark(1, TICKETS, BASE) is None
    assert marks.observe(0, progress("other.topic", 0, BASE), BASE) == []


def test_a_silent_producer_is_waited_for_until_it_expires() -> None:
    marks = book()
    for source in range(SOURCE_PARTITIONS):
        marks.observe(0, progress("iam.grants.v1", source, BASE), BASE)
    assert marks.watermark(0, GRANTS, BASE + timedelta(minutes=14)) == BASE
    assert marks.watermark(0, GRANTS, BASE + timedelta(minutes=16)) is None


def test_unticketed_grant_waits_for_the_tickets_watermark_then_opens_once() -> None:
    harness = GatedHarness()
    k = key("okta:user:wm1@example.com", "okta:group:00gwm1", "member")
    due = BASE + GRACE
    late = due + timedelta(minutes=5)  # processed long after its grace window: a catch-up
    assert harness.feed(grant(k, BASE), late) == []
    assert harness.tick(late + timedelta(seconds=1)) == []  # settled, but the tickets watermark is unknown
    assert harness.both(due, late + timedelta(seconds=2)) == []  # passed the grace end, not the ITSM allowance
    assert harness.book.waiting() == 1
    emissions = harness.advance("itsm.tickets.v1", due + ALLOWANCE, late + timedelta(seconds=3))
    assert activities(emissions) == [(DriftRule.UNTICKETED_GRANT, AlertActivity.CREATE)]
    assert harness.book.waiting() == 0
    assert harness.tick(late + timedelta(minutes=1)) == []


def test_a_ticket_behind_a_lagging_intake_prevents_the_alert() -> None:
    harness = GatedHarness()
    k = key("okta:user:wm2@example.com", "okta:group:00gwm2", "member")
    late = BASE + timedelta(minutes=5)
    harness.both(BASE, late)  # both streams known, tickets far behind
    harness.feed(grant(k, BASE), late)
    harness.advance("iam.grants.v1", late, late + timedelta(seconds=1))
    assert harness.tick(late + timedelta(seconds=1)) == []
    # request-intake catches up: first the ticket, then its progress record.
    harness.feed(ticket(k, TicketTransition.APPROVED, BASE + timedelta(seconds=1), ticket_id="t-wm2"), late)
    assert harness.advance("itsm.tickets.v1", late, late + timedelta(seconds=2)) == []
    assert harness.tick(late + timedelta(minutes=2)) == []
    assert harness.emitted == []


def test_closing_an_open_finding_is_not_held() -> None:
    harness = GatedHarness()
    k = key("okta:user:wm3@example.com", "okta:group:00gwm3", "member")
    now = BASE + timedelta(minutes=1)
    harness.both(now, now)
    harness.feed(grant(k, BASE), now)
    assert activities(harness.tick(now + timedelta(seconds=1))) == [(DriftRule.UNTICKETED_GRANT, AlertActivity.CREATE)]
    closed = harness.feed(grant(k, now, action=GrantAction.REVOKE), now + timedelta(seconds=2))
    assert activities(closed) == [(DriftRule.UNTICKETED_GRANT, AlertActivity.CLOSE)]


def test_a_stalled_input_raises_one_input_stalled_and_closes_when_it_catches_up() -> None:
    harness = GatedHarness()
    harness.both(BASE, BASE)
    assert harness.watch(BASE + timedelta(seconds=30)) == []
    harness.advance("iam.grants.v1", BASE + timedelta(minutes=3), BASE + timedelta(minutes=3))
    raised = harness.watch(BASE + timedelta(minutes=3))
    assert activities(raised) == [(DriftRule.INPUT_STALLED, AlertActivity.CREATE)]
    assert "itsm.tickets.v1" in raised[0].change.key
    assert "180s behind" in (raised[0].change.evidence.message if raised[0].change.evidence else "")
    # Entitlements waiting on the stalled stream raise nothing of their own; the stall is not raised again.
    k = key("okta:user:wm4@example.com", "okta:group:00gwm4", "member")
    harness.feed(grant(k, BASE), BASE + timedelta(minutes=3))
    assert harness.tick(BASE + timedelta(minutes=4)) == []
    assert harness.watch(BASE + timedelta(minutes=4)) == []
    resumed = harness.advance("itsm.tickets.v1", BASE + timedelta(minutes=4), BASE + timedelta(minutes=4))
    assert activities(resumed) == [(DriftRule.UNTICKETED_GRANT, AlertActivity.CREATE)]
    assert activities(harness.watch(BASE + timedelta(minutes=4))) == [(DriftRule.INPUT_STALLED, AlertActivity.CLOSE)]


def test_input_stalled_is_a_valid_ocsf_finding() -> None:
    harness = GatedHarness()
    raised = harness.watch(BASE + timedelta(minutes=2))  # nothing heard since the start
    assert sorted(e.change.key for e in raised) == sorted(
        f"closeloop:service:reconciliation|closeloop:stream:{topic}|progress" for topic in TOPICS
    )
    document = build_finding(
        raised[0], version=OCSF_VERSION, product_version="0.1.0", log_name="drift.alerts.v1", data_sources=("a",)
    )
    assert validate_detection_finding(document, OCSF_VERSION) == []
    assert DriftAlert.from_ocsf(document).rule is DriftRule.INPUT_STALLED


def test_a_backfill_holds_findings_until_it_closes_but_is_not_a_stall() -> None:
    harness = GatedHarness()
    now = BASE + timedelta(days=1)
    harness.both(now, now)
    harness.advance("iam.grants.v1", BASE, now, producer="replay", backfill=True)
    k = key("okta:user:wm5@example.com", "okta:group:00gwm5", "member")
    harness.feed(grant(k, BASE), now)  # a day-old grant, replayed
    assert harness.tick(now + timedelta(seconds=1)) == []
    harness.both(now + timedelta(minutes=10), now + timedelta(minutes=10))
    assert harness.watch(now + timedelta(minutes=10)) == []  # a day behind, but the live producers are not
    assert harness.tick(now + timedelta(minutes=10)) == []
    closed = harness.advance("iam.grants.v1", BASE, now + timedelta(minutes=10), producer="replay", closing=True)
    assert activities(closed) == [(DriftRule.UNTICKETED_GRANT, AlertActivity.CREATE)]
