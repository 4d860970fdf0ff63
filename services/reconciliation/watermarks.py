"""Watermarks of the join's inputs, and the gate that holds absence findings until they can be known (pure).

Every producing service (request-intake for tickets, the connectors for grants, a `closeloop replay` while it
runs) publishes `StreamProgress` records in-band on each partition of its output topic: "every input that
reached me before `watermark` is published on this partition, or earlier on it". The routers copy them to
every join partition, after the data records they cover, so a join partition that has read a progress record
has read everything it covers. Per join partition the book keeps, per (stream, source partition, producer),
the last watermark; a stream's watermark on a join partition is the lowest over its source partitions and
their producers, and unknown until every source partition has been heard from.

A rule that fires on something missing (no ticket for a grant, no grant for a fulfilled ticket, no revoke
after a removal) declares which inputs it waits for (`WAITS`) and says when it became due (`RuleResult.due_at`,
an event time). The finding opens only when each waited-for stream's watermark, less that stream's delivery
allowance (the ITSM's own delay in sending what happened), has passed `due_at`. Until then the key waits
here and is re-evaluated when a progress record moves the watermark far enough. A stalled stream therefore
holds these findings instead of letting them fire, and is reported once, as INPUT_STALLED.

Nothing here is persisted: after a restart or a rebalance the watermarks are unknown (everything waits)
until the next progress records, one producer interval later. Waiting keys also get a re-check deadline in
their persisted state, so a restart never forgets them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from closeloop.contracts.alerts import DriftRule
from closeloop.contracts.progress import StreamProgress
from reconciliation.settings import ReconciliationSettings

TICKETS, GRANTS = "tickets", "grants"

# Which inputs a rule about something missing must have seen complete up to its due time. A rule added
# elsewhere (UNRESOLVED_REFERENCE) registers here by declaring the streams it waits for.
WAITS: dict[DriftRule, tuple[str, ...]] = {
    DriftRule.UNTICKETED_GRANT: (TICKETS, GRANTS),  # the approval, and a revoke inside the grace window
    DriftRule.SCOPE_EXCEEDS_APPROVAL: (TICKETS, GRANTS),
    DriftRule.FULFILMENT_MISSING: (GRANTS, TICKETS),  # the grant, and a cancellation
    DriftRule.CLOSED_NOT_REMOVED: (GRANTS,),  # the revoke
    DriftRule.EXPIRED_STILL_LIVE: (GRANTS, TICKETS),  # the revoke, and an extension
    DriftRule.EXCEPTION_EXPIRED: (GRANTS, TICKETS),
    DriftRule.REVOKE_UNCONFIRMED: (GRANTS,),  # the source's confirmation
    DriftRule.RECERT_OVERDUE: (TICKETS,),  # the recertification decision
}


@dataclass
class _Producer:
    watermark: datetime
    heard_at: datetime
    backfill: bool = False


@dataclass
class _Partition:
    """One join partition's view of the inputs."""

    sources: dict[tuple[str, int], dict[str, _Producer]] = field(default_factory=dict)
    # key -> (stream, required watermark) pairs the key waits for.
    waiting: dict[str, tuple[tuple[str, datetime], ...]] = field(default_factory=dict)
    # The lowest requirement among the waiting keys, per stream: a progress record that leaves the stream
    # below it releases nothing, so the waiting keys are not scanned.
    lowest_need: dict[str, datetime] = field(default_factory=dict)


class WatermarkBook:
    def __init__(
        self,
        streams: Mapping[str, str],
        partitions: Mapping[str, int],
        *,
        allowances: Mapping[str, timedelta],
        producer_expiry: timedelta,
        started_at: datetime,
    ) -> None:
        # topic name -> stream name (tickets, grants); only these streams are tracked and gate findings.
        self.streams = dict(streams)
        # stream -> partitions of its topic (a stream is known once each one has been heard from).
        self.partitions = dict(partitions)
        self.allowances = dict(allowances)
        # A producer silent this long is forgotten (a replica that crashed and never came back).
        self.producer_expiry = producer_expiry
        self.started_at = started_at
        self._joins: dict[int, _Partition] = {}
        self._last_known: dict[str, datetime] = {}

    @classmethod
    def from_settings(
        cls, settings: ReconciliationSettings, tickets_partitions: int, grants_partitions: int, now: datetime
    ) -> WatermarkBook | None:
        """The book for the inputs `settings.watermark_inputs` names; None when none is tracked (no gate)."""
        if not settings.watermark_inputs:
            return None
        topics = {TICKETS: settings.tickets_topic, GRANTS: settings.grants_topic}
        partitions = {TICKETS: tickets_partitions, GRANTS: grants_partitions}
        allowances = {TICKETS: settings.itsm_delivery_allowance, GRANTS: settings.iam_delivery_allowance}
        tracked = settings.watermark_inputs
        return cls(
            {topics[stream]: stream for stream in tracked},
            {stream: partitions[stream] for stream in tracked},
            allowances={stream: allowances[stream] for stream in tracked},
            producer_expiry=settings.watermark_producer_expiry,
            started_at=now,
        )

    def _join(self, partition: int) -> _Partition:
        return self._joins.setdefault(partition, _Partition())

    def forget_partitions(self, keep: Iterable[int]) -> None:
        kept = set(keep)
        for partition in [p for p in self._joins if p not in kept]:
            del self._joins[partition]

    # --- observing ---------------------------------------------------------------------------------------

    def observe(self, partition: int, progress: StreamProgress, now: datetime) -> list[str]:
        """Fold one progress copy; return the keys of this join partition that no longer need to wait."""
        stream = self.streams.get(progress.stream)
        if stream is None:
            return []
        join = self._join(partition)
        producers = join.sources.setdefault((stream, progress.partition), {})
        if progress.closing:
            producers.pop(progress.producer, None)
        else:
            # The latest record of a producer wins, also when it is lower (a replay announcing its hold).
            producers[progress.producer] = _Producer(progress.watermark, now, progress.backfill)
        return self._released(partition, now)

    def watermark(self, partition: int, stream: str, now: datetime, *, live_only: bool = False) -> datetime | None:
        """The stream's watermark on a join partition, or None while it is not known. `live_only` leaves
        backfills out (how far the live producers are, for stall detection)."""
        join = self._joins.get(partition)
        if join is None:
            return None
        lowest: datetime | None = None
        expected = self.partitions.get(stream, 0)
        heard = 0
        for (name, _), producers in join.sources.items():
            if name != stream:
                continue
            live = [
                p
                for p in producers.values()
                if now - p.heard_at <= self.producer_expiry and not (live_only and p.backfill)
            ]
            if not live:
                return None
            heard += 1
            low = min(p.watermark for p in live)
            lowest = low if lowest is None else min(lowest, low)
        if heard < expected or lowest is None:
            return None
        if live_only:
            self._last_known[stream] = max(lowest, self._last_known.get(stream, lowest))
        return lowest

    def lag(self, partitions: Iterable[int], stream: str, now: datetime) -> tuple[datetime | None, timedelta]:
        """How far behind processing time the stream's live producers are on this worker (the best of its join
        partitions): the watermark (None when unknown) and the lag from it, or from the last known one / the
        start. A backfill holding the watermark back is not a stall."""
        marks = [m for p in partitions if (m := self.watermark(p, stream, now, live_only=True)) is not None]
        if marks:
            best = max(marks)
            return best, max(now - best, timedelta(0))
        since = self._last_known.get(stream, self.started_at)
        return None, max(now - since, timedelta(0))

    # --- gating -------------------------------------------------------------------------------------------

    def pending(
        self, partition: int, rule: DriftRule, due_at: datetime, now: datetime
    ) -> tuple[tuple[str, datetime], ...]:
        """What the finding still waits for: (stream, the watermark that stream must reach) pairs."""
        needs = []
        for stream in WAITS.get(rule, ()):
            if stream not in self.partitions:
                continue  # not a tracked input in this deployment
            required = due_at + self.allowances.get(stream, timedelta(0))
            mark = self.watermark(partition, stream, now)
            if mark is None or mark < required:
                needs.append((stream, required))
        return tuple(needs)

    def wait(self, partition: int, key: str, needs: tuple[tuple[str, datetime], ...]) -> None:
        join = self._join(partition)
        held = dict(join.waiting.get(key, ()))
        for stream, required in needs:
            # The earliest need releases the key: its evaluation re-registers whatever still has to wait.
            held[stream] = min(required, held.get(stream, required))
            join.lowest_need[stream] = min(required, join.lowest_need.get(stream, required))
        join.waiting[key] = tuple(held.items())

    def waiting(self, partition: int | None = None) -> int:
        joins = self._joins.values() if partition is None else [self._join(partition)]
        return sum(len(j.waiting) for j in joins)

    def _released(self, partition: int, now: datetime) -> list[str]:
        join = self._join(partition)
        if not join.waiting:
            return []
        marks: dict[str, datetime | None] = {
            stream: self.watermark(partition, stream, now) for stream in self.partitions
        }
        if not any(
            (mark := marks.get(stream)) is not None and mark >= need for stream, need in join.lowest_need.items()
        ):
            return []
        released = []
        for key, needs in list(join.waiting.items()):
            ready = True
            for stream, required in needs:
                mark = marks.get(stream)
                if mark is None or mark < required:
                    ready = False
                    break
            if ready:
                released.append(key)
                del join.waiting[key]
        lowest: dict[str, datetime] = {}
        for needs in join.waiting.values():
            for stream, required in needs:
                lowest[stream] = min(required, lowest.get(stream, required))
        join.lowest_need = lowest
        return released
