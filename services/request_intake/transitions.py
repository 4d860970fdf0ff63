"""Which transition a record represents, given the last state seen for its ticket. Pure logic.

ServiceNow records do not carry their previous state, so the transition is the difference between the
ticket's canonical status now and the one last seen. The vendor revision (sys_mod_count, Jira changelog
id; the update time when there is none) orders deliveries: an older or equal revision is dropped, so
out-of-order and duplicate deliveries never move a ticket backwards or publish twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from closeloop.contracts.tickets import TicketTransition
from request_intake.observation import CLOSED, TicketObservation


@dataclass(frozen=True)
class LastSeen:
    """What the intake last recorded for a ticket."""

    phase: TicketTransition
    vendor_state: str
    version: int | None
    updated_at: datetime | None


class Verdict(StrEnum):
    PUBLISH = "publish"
    DUPLICATE = "duplicate"  # the same revision again
    STALE = "stale"  # an older revision than the last seen
    NO_TRANSITION = "no_transition"  # a newer revision in the same canonical status (a comment, a field edit)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    transition: TicketTransition | None = None
    previous_state: str | None = None


def order(obs: TicketObservation, last: LastSeen) -> int | None:
    """-1 older, 0 same revision, 1 newer than the last seen; None when nothing orders them."""
    if obs.version is not None and last.version is not None:
        return (obs.version > last.version) - (obs.version < last.version)
    if obs.updated_at is not None and last.updated_at is not None:
        if obs.updated_at != last.updated_at:
            return 1 if obs.updated_at > last.updated_at else -1
        # Same second (ServiceNow dates have no sub-second part): the same revision only if nothing changed.
        return 0 if obs.vendor_state == last.vendor_state else None
    return None


def decide(obs: TicketObservation, last: LastSeen | None) -> Decision:
    if last is None:
        previous_phase, previous_state = obs.previous_phase_hint, obs.previous_vendor_state
    else:
        position = order(obs, last)
        if position == 0 or (position is None and obs.phase == last.phase and obs.vendor_state == last.vendor_state):
            return Decision(Verdict.DUPLICATE)
        if position == -1:
            return Decision(Verdict.STALE)
        if obs.phase == last.phase:
            return Decision(Verdict.NO_TRANSITION)
        previous_phase, previous_state = last.phase, obs.previous_vendor_state or last.vendor_state
    if obs.phase not in CLOSED and (obs.reopened_hint or previous_phase in CLOSED):
        return Decision(Verdict.PUBLISH, TicketTransition.REOPENED, previous_state)
    return Decision(Verdict.PUBLISH, obs.phase, previous_state)
