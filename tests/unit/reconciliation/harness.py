"""Drive the pure join engine like the faust app does, without Kafka: route, fold, evaluate, tick deadlines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from closeloop.contracts.alerts import AlertActivity, DriftRule
from closeloop.contracts.base import Envelope
from closeloop.contracts.directory import IdentityLinked, ResourceCatalogued
from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged, SnapshotMarker
from closeloop.contracts.ticket_interpretation import interpret
from closeloop.contracts.tickets import TicketEvent
from closeloop.identity.bind import bind_ticket
from reconciliation.join_engine import Emission, JoinEngine, JoinInput
from reconciliation.routing import partition_for, route
from reconciliation.rules.base import JoinView, RulePolicy
from reconciliation.state import AlertSlots, EntitlementState
from reconciliation.store import ALERTS, ENTITLEMENTS, MemoryTables, UnitOfWork
from tests.unit.reconciliation.scenarios import GRACE, Scenario

PARTITIONS = 3

POLICY = RulePolicy(
    grant_before_approval_grace=GRACE,
    closed_removal_grace=GRACE,
    fulfilment_grace=GRACE,
    record_settle_grace=GRACE,
    expiry_grace=timedelta(seconds=1),
    privilege_order=(("read", "triage", "write", "maintain", "admin"), ("member", "maintainer", "owner")),
    expiry_required_resources=("okta:adminrole:*",),
    expiry_required_privileges=("admin", "owner"),
    unresolved_reference_window=GRACE,
)


@dataclass
class Harness:
    policy: RulePolicy = POLICY
    tables: MemoryTables = field(default_factory=MemoryTables)
    emitted: list[Emission] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = JoinEngine(self.policy, snapshot_copies=PARTITIONS, settle=timedelta(milliseconds=300))

    def _run(self, item: JoinInput, now: datetime) -> list[Emission]:
        uow = UnitOfWork(self.tables, PARTITIONS)
        outcome = self.engine.handle(uow, item, now)
        self.tables.apply(uow.writes())
        self.emitted += outcome.emissions
        emissions = list(outcome.emissions)
        for bound in outcome.forwards:  # bound late: sent on to the bound key's partition
            principal = route(bound).principal
            assert principal is not None
            emissions += self._run(JoinInput("event", partition_for(principal, PARTITIONS), bound), now)
        return emissions

    def feed(self, event: Envelope, now: datetime) -> list[Emission]:
        if isinstance(event, IdentityLinked | ResourceCatalogued):
            self.engine.directory.apply(event)  # what the directory feed does on every worker
            return self.rebind(now)
        if isinstance(event, TicketEvent):
            return self._ticket(event, now)
        if isinstance(event, GrantEvent | PrincipalStatusChanged):
            before = self.engine.directory.version
            self.engine.directory.observe(event, "test")
            if self.engine.directory.version != before:
                self.rebind(now)
        routed = route(event)
        emissions: list[Emission] = []
        if isinstance(event, SnapshotMarker):
            for partition in range(PARTITIONS):
                for origin in range(PARTITIONS):
                    emissions += self._run(JoinInput("marker", partition, event, origin_partition=origin), now)
            return emissions
        if routed.broadcast:
            for partition in range(PARTITIONS):
                emissions += self._run(JoinInput("person", partition, event), now)
            return emissions
        assert routed.principal is not None, routed.skip_reason
        return self._run(JoinInput("event", partition_for(routed.principal, PARTITIONS), event), now)

    def _ticket(self, event: TicketEvent, now: datetime) -> list[Emission]:
        """What the tickets router does: bind the references, else park the ticket under its provisional key."""
        binding = bind_ticket(event, self.engine.directory)
        if binding.pending:
            principal = interpret(event).beneficiary.principal
            assert principal is not None
            return self._run(JoinInput("pending", partition_for(principal, PARTITIONS), event), now)
        emissions: list[Emission] = []
        for bound in binding.events:
            routed = route(bound)
            if routed.broadcast:
                for partition in range(PARTITIONS):
                    emissions += self._run(JoinInput("person", partition, bound), now)
            elif routed.principal is not None:
                emissions += self._run(JoinInput("event", partition_for(routed.principal, PARTITIONS), bound), now)
        return emissions

    def rebind(self, now: datetime) -> list[Emission]:
        """What the timer does when the directory changed: a tick for every key holding a pending ticket."""
        emissions: list[Emission] = []
        for key, raw in list(self.tables.items(ENTITLEMENTS)):
            if raw.get("pending"):
                partition = partition_for(EntitlementState.load(raw).principal, PARTITIONS)
                emissions += self._run(JoinInput("tick", partition, tick_keys=(key,)), now)
        return emissions

    def tick(self, now: datetime) -> list[Emission]:
        """What the timer does: a tick for every key whose next check is due."""
        emissions: list[Emission] = []
        for key, raw in self.tables.items(ENTITLEMENTS):
            state = EntitlementState.load(raw)
            if state.next_check is not None and state.next_check <= now:
                partition = partition_for(state.principal, PARTITIONS)
                emissions += self._run(JoinInput("tick", partition, tick_keys=(key,)), now)
        return emissions

    def play(self, scenario: Scenario, base: datetime) -> list[Emission]:
        for _, event in scenario.inputs:
            self.feed(event, max(base, event.occurred_at))
        end = base + scenario.settle
        # Tick repeatedly like the timer would, until nothing is due any more.
        for _ in range(5):
            self.tick(end)
        return self.emitted

    def state(self, key: str) -> EntitlementState:
        raw = self.tables.get(ENTITLEMENTS, key)
        assert raw is not None
        return EntitlementState.load(raw)

    def open_alerts(self) -> set[tuple[str, DriftRule]]:
        found = set()
        for key, raw in self.tables.items(ALERTS):
            for alert in AlertSlots.load(raw).alerts:
                if alert.open:
                    found.add((key, alert.rule))
        return found


def activities(emissions: list[Emission]) -> list[tuple[DriftRule, AlertActivity]]:
    return [(e.change.rule, e.change.activity) for e in emissions]


def fold(events: list[Envelope], at: datetime, policy: RulePolicy = POLICY) -> Harness:
    """The join state after these inputs (processed at `at`), without evaluating any deadline."""
    harness = Harness(policy=policy)
    for event in events:
        harness.feed(event, at)
    return harness


def view_of(harness: Harness, key: object) -> JoinView:
    view = harness.engine.view(UnitOfWork(harness.tables, PARTITIONS), str(key))
    assert view is not None, f"no state for {key}"
    return view
