"""The one handler both ingresses share: vendor payload -> at most one TicketEvent per ticket revision.

Normalize (pure; raises Unmappable before any side effect), then per ticket, under its lock: decide the
transition against the last seen state, publish and wait for the broker's acknowledgement, and only then
record the new state. A crash between publish and record re-publishes the same deterministic event id on
redelivery; consumers deduplicate on it. Knows nothing of HTTP or of how the payload arrived.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from closeloop.contracts.tickets import TicketEvent
from closeloop.logging import get_logger
from closeloop.metrics import ServiceMetrics
from closeloop.progress_beacon import InFlight
from closeloop.untrusted import UNEXPECTED, as_bad_input
from request_intake.mapping import Mapping
from request_intake.normalizers import Normalized, normalize
from request_intake.observation import TicketObservation
from request_intake.problems import Invalid, Skipped, Unmappable
from request_intake.transitions import LastSeen, Verdict, decide

log = get_logger(__name__)
MAX_STATE = 200


class TicketPublisher(Protocol):
    topic: str

    async def publish(self, event: TicketEvent, key: bytes) -> None: ...


class LockedTicket(Protocol):
    last: LastSeen | None

    async def record(self, obs: TicketObservation, event_id: str | None) -> None: ...


class TicketStateStore(Protocol):
    def locked(self, system: str, ticket_key: str) -> AbstractAsyncContextManager[LockedTicket]: ...


@dataclass(frozen=True)
class Outcome:
    """What became of one ticket in a payload."""

    result: str  # published | duplicate | stale | no_transition | skipped | dead_lettered
    ticket: str | None = None
    event_id: str | None = None
    transition: str | None = None
    why: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _unexpected(reason: str) -> Unmappable:
    return Unmappable("<body>", reason)


class IngestTicket:
    def __init__(
        self,
        mapping: Mapping,
        states: TicketStateStore,
        publisher: TicketPublisher,
        metrics: ServiceMetrics,
        in_flight: InFlight | None = None,
    ) -> None:
        self._mapping = mapping
        self._states = states
        self._publisher = publisher
        self._metrics = metrics
        # Receipt times of deliveries being published, for the tickets topic's progress records.
        self.in_flight = in_flight or InFlight()

    def normalize(self, system: str, payload: Any) -> Normalized:
        """Pure: observations and skips for the payload; raises Unmappable (nothing has happened yet),
        also when a normalizer meets data it did not expect (logged: that gap is a bug to fix)."""
        try:
            return as_bad_input(Unmappable, _unexpected, normalize, system, payload, self._mapping)
        except Unmappable as exc:
            if exc.reason.startswith(UNEXPECTED):
                log.warning("normalizer raised outside its contract", system=system, reason=exc.reason)
            raise

    async def apply(self, items: Normalized, input_name: str) -> list[Outcome]:
        with self.in_flight.receiving():
            return await self._apply(items, input_name)

    async def _apply(self, items: Normalized, input_name: str) -> list[Outcome]:
        outcomes = []
        for item in items:
            if isinstance(item, Invalid):  # the caller dead-letters the delivery with its problem
                outcomes.append(Outcome("dead_lettered", why=item.problem.describe()))
            elif isinstance(item, Skipped):
                self._metrics.skip(input_name, item.why)
                log.debug("ticket skipped", why=item.why, detail=item.detail, ticket=item.ticket, input=input_name)
                outcomes.append(Outcome("skipped", ticket=item.ticket, why=item.why))
            else:
                outcomes.append(await self._apply_one(item, input_name))
        return outcomes

    async def ingest(self, system: str, payload: Any, input_name: str) -> list[Outcome]:
        return await self.apply(self.normalize(system, payload), input_name)

    async def _apply_one(self, obs: TicketObservation, input_name: str) -> Outcome:
        async with self._states.locked(obs.system, obs.state_key) as ticket:
            decision = decide(obs, ticket.last)
            if decision.verdict is Verdict.DUPLICATE:
                self._metrics.duplicate(input_name)
                return Outcome("duplicate", ticket=obs.ticket, event_id=obs.draft.event_id)
            if decision.verdict is Verdict.STALE:
                self._metrics.skip(input_name, "stale")
                log.info("stale revision dropped", ticket=obs.ticket, version=obs.version, input=input_name)
                return Outcome("stale", ticket=obs.ticket)
            if decision.verdict is Verdict.NO_TRANSITION:
                await ticket.record(obs, None)
                self._metrics.skip(input_name, "no_transition")
                return Outcome("no_transition", ticket=obs.ticket)
            previous = decision.previous_state[:MAX_STATE] if decision.previous_state else None
            event: TicketEvent = obs.draft.model_copy(
                update={"transition": decision.transition, "previous_state": previous}
            )
            await self._publisher.publish(event, obs.kafka_key())
            self._metrics.published(self._publisher.topic)
            await ticket.record(obs, event.event_id)
        log.info(
            "ticket event published",
            ticket=obs.ticket,
            transition=event.transition.value,
            event_id=event.event_id,
            version=obs.version,
            input=input_name,
        )
        return Outcome("published", ticket=obs.ticket, event_id=event.event_id, transition=event.transition.value)
