"""The join (pure apart from its unit of work): fold one input into the state, re-evaluate the rules for every
entitlement the input can affect, and decide which alert records to emit.

Which entitlements an input affects:
- a ticket or grant or record event for an exact key: every entitlement of the same principal and resource
  (approvals at one privilege matter to grants at another);
- a principal-level ticket or a status change: every entitlement of the principal;
- a person-level ticket (a bare email or login): every principal on the partition with that id;
- a completed snapshot: every entitlement of the partition it marked gone;
- a deadline tick: the keys it names;
- a progress record (a stream's watermark moved): the keys whose absence findings were waiting for it;
- a watch tick: the INPUT_STALLED findings of the tracked streams.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from closeloop.contracts.base import Envelope
from closeloop.contracts.entitlements import EntitlementEvent
from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged, SnapshotMarker, SnapshotPhase
from closeloop.contracts.identity import EntitlementKey, split_ref
from closeloop.contracts.progress import StreamProgress
from closeloop.contracts.ticket_interpretation import interpret
from closeloop.contracts.tickets import TicketEvent
from reconciliation.apply_grant import apply_grant
from reconciliation.apply_record import apply_record
from reconciliation.apply_status import apply_credential, apply_status, index_key
from reconciliation.input_stalled import input_stalled, stall_view
from reconciliation.lifecycle import AlertChange, decide
from reconciliation.merge_ticket import merge_ticket, put_ticket
from reconciliation.rules import evaluate_all, next_check
from reconciliation.rules.base import JoinView, RulePolicy, RuleResult, Trigger
from reconciliation.state import AlertSlots, EntitlementState, PersonTickets, PrincipalState, SnapshotProgress
from reconciliation.store import UnitOfWork, person_slot, snapshot_slot
from reconciliation.sweep_snapshot import sweep_entitlement
from reconciliation.watermarks import WAITS, WatermarkBook

# Inputs after which a finding may be the other streams' side of the join still on its way: opening waits.
SETTLING_KINDS = frozenset({"event", "marker", "person"})


@dataclass(frozen=True)
class JoinInput:
    """One record of the join topic, decoded: an event, a snapshot marker copy, a person ticket, or a tick."""

    kind: str  # "event" | "marker" | "person" | "tick" | "progress" | "watch"
    partition: int
    event: Envelope | None = None
    origin_partition: int | None = None
    tick_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Emission:
    change: AlertChange
    view: JoinView


@dataclass(frozen=True)
class Outcome:
    emissions: list[Emission]
    evaluated: int
    skipped: str | None = None


def new_state(key: str) -> EntitlementState:
    parsed = EntitlementKey.parse(key)
    return EntitlementState(key=key, principal=parsed.principal, resource=parsed.resource, privilege=parsed.privilege)


def seen_live(before: EntitlementState, after: EntitlementState, now: datetime) -> EntitlementState:
    """Stamp when the reconciler first saw the grant live (processing time, for the record-settle grace)."""
    was_live = before.grant is not None and before.grant.live
    grant = after.grant
    if grant is None or not grant.live or was_live:
        return after
    return after.model_copy(update={"grant": grant.model_copy(update={"seen_live_at": now})})


def latest_event_at(state: EntitlementState) -> datetime | None:
    """The newest event time the join holds for an entitlement (when a rule names no due time)."""
    times = [t.occurred_at for t in state.tickets]
    if state.grant is not None:
        times.append(state.grant.last_event_at)
    if state.record is not None:
        times.append(state.record.occurred_at)
    return max(times, default=None)


def person_of_principal(principal: str) -> str | None:
    """The bare id a person-level ticket would use for this principal (users only)."""
    _, ref_type, ref_id = split_ref(principal)
    return ref_id.lower() if ref_type == "user" else None


class JoinEngine:
    def __init__(
        self,
        policy: RulePolicy,
        *,
        snapshot_copies: int,
        max_tickets_per_key: int = 20,
        settle: timedelta = timedelta(0),
        watermarks: WatermarkBook | None = None,
        hold_recheck: timedelta = timedelta(seconds=30),
        stall_limit: timedelta = timedelta(minutes=5),
    ) -> None:
        self.policy = policy
        # Input watermarks; None: absence findings open without waiting for them (unit tests of single rules).
        self.watermarks = watermarks
        # A finding held for a watermark is re-checked at least this often (the progress record releasing it
        # normally comes first; this persists in the key's state, so a restart does not forget it).
        self.hold_recheck = hold_recheck
        # A tracked stream whose watermark lags more than this raises INPUT_STALLED.
        self.stall_limit = stall_limit
        # Findings open only on an evaluation at least `settle` after the last input touched the key.
        self.settle = settle
        # Copies of each snapshot marker a join partition receives: one per partition of the grants topic.
        self.snapshot_copies = snapshot_copies
        self.max_tickets = max_tickets_per_key

    # --- entry point ---------------------------------------------------------------------------------------

    def handle(self, uow: UnitOfWork, item: JoinInput, now: datetime) -> Outcome:
        event = item.event
        trigger = Trigger(
            kind=item.kind,
            event_id=event.event_id if event else None,
            event_type=event.event_type if event else None,
            occurred_at=event.occurred_at if event else None,
            correlation_id=event.correlation_id if event else None,
        )
        if item.kind == "tick":
            keys = [k for k in item.tick_keys if uow.entitlement(k) is not None]
        elif item.kind == "progress" and isinstance(event, StreamProgress):
            released = self.watermarks.observe(item.partition, event, now) if self.watermarks else []
            keys = [k for k in released if uow.entitlement(k) is not None]
        elif item.kind == "watch":
            return Outcome(emissions=self.watch_inputs(uow, now), evaluated=0)
        elif item.kind == "marker" and isinstance(event, SnapshotMarker):
            keys = self._marker(uow, event, item.partition, item.origin_partition, now)
        elif item.kind == "person" and isinstance(event, TicketEvent):
            keys = self._person_ticket(uow, event, item.partition)
        elif isinstance(event, TicketEvent):
            keys = self._ticket(uow, event)
        elif isinstance(event, GrantEvent):
            keys = self._keyed(uow, str(event.key), lambda s: seen_live(s, apply_grant(s, event), now))
        elif isinstance(event, EntitlementEvent):
            keys = self._keyed(uow, str(event.key), lambda s: apply_record(s, event))
        elif isinstance(event, PrincipalStatusChanged):
            keys = self._status(uow, event)
        else:
            return Outcome(emissions=[], evaluated=0, skipped=f"unexpected join input {item.kind}")
        emissions = [e for key in keys for e in self.evaluate(uow, key, trigger, now)]
        return Outcome(emissions=emissions, evaluated=len(keys))

    # --- folding inputs into state ---------------------------------------------------------------------------

    def _keyed(self, uow: UnitOfWork, key: str, fold: Callable[[EntitlementState], EntitlementState]) -> list[str]:
        state = uow.entitlement(key) or new_state(key)
        uow.put_entitlement(fold(state))
        principal = uow.principal(state.principal)
        indexed = index_key(principal, state.principal, key)
        uow.put_principal(indexed)
        return list(indexed.resource_keys(state.resource))

    def _ticket(self, uow: UnitOfWork, event: TicketEvent) -> list[str]:
        meaning = interpret(event)
        principal = meaning.beneficiary.principal
        if principal is None:
            return []
        key = str(meaning.entitlement) if meaning.entitlement is not None else None
        if key is not None:
            return self._keyed(
                uow,
                key,
                lambda s: s.model_copy(
                    update={
                        "tickets": put_ticket(
                            s.tickets,
                            merge_ticket(s.ticket(event.ticket_id), event, principal=principal, key=key),
                            self.max_tickets,
                        )
                    }
                ),
            )
        state = uow.principal(principal) or PrincipalState(principal=principal)
        prev = next((t for t in state.tickets if t.ticket_id == event.ticket_id), None)
        fact = merge_ticket(prev, event, principal=principal, key=None)
        uow.put_principal(state.model_copy(update={"tickets": put_ticket(state.tickets, fact, self.max_tickets)}))
        return list(state.keys)

    def _person_ticket(self, uow: UnitOfWork, event: TicketEvent, partition: int) -> list[str]:
        person = interpret(event).beneficiary.person
        if person is None:
            return []
        slot = person_slot(person, partition)
        held = uow.person(slot) or PersonTickets(person=person)
        prev = next((t for t in held.tickets if t.ticket_id == event.ticket_id), None)
        fact = merge_ticket(prev, event, principal=None, key=None)
        uow.put_person(
            slot, held.model_copy(update={"tickets": put_ticket(held.tickets, fact, self.max_tickets)}), partition
        )
        keys: list[str] = []
        for name in uow.principal_names(partition):
            if person_of_principal(name) == person:
                principal = uow.principal(name)
                keys += list(principal.keys) if principal else []
        return keys

    def _status(self, uow: UnitOfWork, event: PrincipalStatusChanged) -> list[str]:
        state = apply_status(uow.principal(event.principal), event)
        uow.put_principal(state)
        if event.credential is not None:
            for key in state.keys:
                current = uow.entitlement(key)
                updated = apply_credential(current, event.credential) if current else None
                if updated is not None:
                    uow.put_entitlement(updated)
        return list(state.keys)

    def _marker(
        self, uow: UnitOfWork, marker: SnapshotMarker, partition: int, origin: int | None, now: datetime
    ) -> list[str]:
        slot = snapshot_slot(marker.snapshot_id, partition)
        progress = uow.snapshot(slot) or SnapshotProgress(
            snapshot_id=marker.snapshot_id,
            source_system=marker.source_system,
            scope=marker.scope,
            expected=self.snapshot_copies,
        )
        origin_partition = origin if origin is not None else -1
        if marker.phase == SnapshotPhase.STARTED:
            started = min(t for t in (progress.started_at, marker.occurred_at) if t is not None)
            progress = progress.model_copy(
                update={
                    "started_at": started,
                    "started_from": tuple(sorted({*progress.started_from, origin_partition})),
                }
            )
        else:
            progress = progress.model_copy(
                update={"completed_from": tuple(sorted({*progress.completed_from, origin_partition}))}
            )
        swept: list[str] = []
        if progress.complete and progress.swept_at is None:
            for key in list(uow.entitlement_keys(partition)):
                state = uow.entitlement(key)
                changed = sweep_entitlement(state, progress) if state else None
                if changed is not None:
                    uow.put_entitlement(changed)
                    swept.append(key)
            progress = progress.model_copy(update={"swept_at": now})
        uow.put_snapshot(slot, progress, partition)
        return swept

    # --- evaluation ----------------------------------------------------------------------------------------

    def view(self, uow: UnitOfWork, key: str, trigger: Trigger | None = None) -> JoinView | None:
        state = uow.entitlement(key)
        if state is None:
            return None
        principal = uow.principal(state.principal)
        siblings = tuple(
            s
            for k in (principal.resource_keys(state.resource) if principal else ())
            if k != key and (s := uow.entitlement(k)) is not None
        )
        person = person_of_principal(state.principal)
        held = uow.person(person_slot(person, uow.partition_of(state.principal))) if person else None
        return JoinView(
            state=state,
            principal=principal,
            siblings=siblings,
            person_tickets=held.tickets if held else (),
            trigger=trigger,
        )

    def evaluate(self, uow: UnitOfWork, key: str, trigger: Trigger | None, now: datetime) -> list[Emission]:
        view = self.view(uow, key, trigger)
        if view is None:
            return []
        results = evaluate_all(view, now, self.policy)
        check = next_check(results)
        # An input may be followed closely by the other streams' side of the join: opening waits for a tick.
        defer = self.settle > timedelta(0) and (trigger is None or trigger.kind in SETTLING_KINDS)
        slots = uow.alerts(key) or AlertSlots(key=key)
        emissions = []
        for result in results:
            previous = slots.get(result.rule)
            opening = result.holds and (previous is None or not previous.open)
            if defer and opening:
                settled = now + self.settle
                check = settled if check is None else min(check, settled)
                continue
            if opening and self._held(uow, view, result, now):
                recheck = now + self.hold_recheck
                check = recheck if check is None else min(check, recheck)
                continue
            state, change = decide(previous, result, view, now)
            if state is not None:
                slots = slots.put(state)
            if change is not None:
                emissions.append(Emission(change=change, view=view))
        if check != view.state.next_check:
            uow.put_entitlement(view.state.model_copy(update={"next_check": check}))
        if emissions:
            uow.put_alerts(slots)
        return emissions

    def _held(self, uow: UnitOfWork, view: JoinView, result: RuleResult, now: datetime) -> bool:
        """Whether a finding about something missing must wait for an input's watermark (and is now waiting)."""
        if self.watermarks is None or result.rule not in WAITS:
            return False
        due = result.due_at or latest_event_at(view.state)
        if due is None:
            return False
        partition = uow.partition_of(view.state.principal)
        needs = self.watermarks.pending(partition, result.rule, due, now)
        if needs:
            self.watermarks.wait(partition, view.state.key, needs)
        return bool(needs)

    def watch_inputs(self, uow: UnitOfWork, now: datetime) -> list[Emission]:
        """Open or close INPUT_STALLED for each tracked stream (on the partition its pseudo-key hashes to)."""
        book = self.watermarks
        if book is None:
            return []
        emissions = []
        for topic, stream in sorted(book.streams.items()):
            view = stall_view(topic)
            partition = uow.partition_of(view.state.principal)
            result = input_stalled(book, partition, topic, stream, now, self.stall_limit)
            slots = uow.alerts(view.state.key) or AlertSlots(key=view.state.key)
            state, change = decide(slots.get(result.rule), result, view, now)
            if state is not None:
                uow.put_alerts(slots.put(state))
            if change is not None:
                emissions.append(Emission(change=change, view=view))
        return emissions
