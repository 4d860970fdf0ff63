"""The one operation every ingress performs: vendor records in, grant events durably out, once.

For a batch of records of one source: normalize each (malformed -> dead letter), load the cached state
the stateful sources need (row-locked), interpret each record in order against that state, claim the
records that produced something in the processed-records table, publish the events of the records
claimed now (duplicates publish nothing), dead-letter the malformed ones, save the new state, and commit.
Publishing happens before the commit: if the broker fails, the claims roll back and the batch can be
retried, and the deterministic event ids make a re-publish harmless. Valid records that carry no grant
or revoke are counted by reason and skipped.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from closeloop.connector_sdk.events import record_key
from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import cloudevents_headers, encode, kafka_key
from closeloop.contracts.grants import GrantEvent
from closeloop.logging import get_logger
from closeloop.progress_beacon import InFlight
from closeloop.untrusted import UNEXPECTED, UntrustedInput, as_bad_input, screen
from connectors.errors import MalformedRecord
from connectors.metrics import ConnectorMetrics
from connectors.model import ParseContext, ParseResult, RecordIdentity, StateEntry
from connectors.registry import Connector
from connectors.sink import GrantSink, Rejected
from connectors.stores import Ledger
from connectors.vendor_json import compact_json

log = get_logger(__name__)


@dataclass(frozen=True)
class Origin:
    """Where a batch came from, for dead letters and metrics."""

    kind: str  # hook, kafka, replay
    detail: str  # hook path, topic, or file name
    partition: int | None = None
    offset: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    # The exact bytes of the input when it held a single record, so its dead letter is byte-identical.
    raw: bytes | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.detail}"


@dataclass
class IngestSummary:
    received: int = 0
    records_published: int = 0
    events_published: int = 0
    duplicates: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    skipped_by_reason: Counter[str] = field(default_factory=Counter)
    rejections: list[str] = field(default_factory=list)

    def add(self, other: IngestSummary) -> None:
        self.received += other.received
        self.records_published += other.records_published
        self.events_published += other.events_published
        self.duplicates += other.duplicates
        self.skipped += other.skipped
        self.dead_lettered += other.dead_lettered
        self.skipped_by_reason.update(other.skipped_by_reason)
        self.rejections += other.rejections[: max(0, 20 - len(self.rejections))]

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "published_events": self.events_published,
            "published_records": self.records_published,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "dead_lettered": self.dead_lettered,
        }


@dataclass
class _Prepared:
    raw: Any
    record: Mapping[str, Any]
    identity: RecordIdentity
    key: str
    state_keys: list[str]


def _read(connector: Connector, raw: Any, ctx: ParseContext) -> tuple[Mapping[str, Any], RecordIdentity, list[str]]:
    """Screen (NUL, lone surrogates, depth), normalize and identify one record."""
    try:
        screen(raw)
    except UntrustedInput as exc:
        raise MalformedRecord(f"record {exc.reason}") from exc
    record = connector.normalize(raw)
    return record, connector.identify(record), connector.state_keys(record, ctx)


def _interpret(connector: Connector, record: Mapping[str, Any], ctx: ParseContext) -> ParseResult:
    result = connector.interpret(record, ctx)
    for event in result.events:  # what cannot be encoded must fail here, per record, not at publish
        encode(event)
        cloudevents_headers(event)
        kafka_key(event)
    return result


class IngestRecords:
    def __init__(
        self,
        connectors: Mapping[str, Connector],
        ledger: Ledger,
        sink: GrantSink,
        metrics: ConnectorMetrics,
        context: Callable[[], ParseContext],
        in_flight: InFlight | None = None,
    ) -> None:
        self._connectors = connectors
        # Receipt times of batches being published, for the grants topic's progress records.
        self.in_flight = in_flight or InFlight()
        self._ledger = ledger
        self._sink = sink
        self._metrics = metrics
        self._context = context

    def connector(self, source: str) -> Connector:
        return self._connectors[source]

    async def reject_body(self, source: str, raw: bytes, reason: str, origin: Origin) -> IngestSummary:
        """A whole body that is not even JSON: dead-letter it as it came."""
        self._metrics.received(f"{origin.kind}:{source}")
        await self._sink.reject([self._rejected(raw, reason, origin)])
        self._metrics.dead_lettered(f"{origin.kind}:{source}", "malformed")
        log.warning("body dead-lettered", source=source, origin=origin.label, reason=reason)
        return IngestSummary(received=1, dead_lettered=1, rejections=[reason])

    async def __call__(self, source: str, records: Sequence[Any], origin: Origin) -> IngestSummary:
        with self.in_flight.receiving():
            return await self._ingest(source, records, origin)

    async def _ingest(self, source: str, records: Sequence[Any], origin: Origin) -> IngestSummary:
        connector = self._connectors[source]
        metric_input = f"{origin.kind}:{source}"
        started = time.perf_counter()
        summary = IngestSummary(received=len(records))
        ctx = self._context()
        rejected: list[Rejected] = []

        def reject(raw: Any, reason: str) -> None:
            if reason.startswith(UNEXPECTED):  # a parser gap: the record is kept, the gap must be fixed
                log.warning("parser raised outside its contract", source=source, reason=reason)
            value = origin.raw if origin.raw is not None and len(records) == 1 else compact_json(raw)
            rejected.append(self._rejected(value, reason, origin))
            summary.rejections.append(reason)

        prepared: list[_Prepared] = []
        for raw in records:
            self._metrics.received(metric_input)
            try:
                record, identity, keys = as_bad_input(MalformedRecord, MalformedRecord, _read, connector, raw, ctx)
            except MalformedRecord as exc:
                reject(raw, exc.reason)
                continue
            key = record_key(identity.vendor_event_id, identity.vendor_event_type)
            prepared.append(_Prepared(raw, record, identity, key, keys))

        async with self._ledger.unit(source) as unit:
            overlay: dict[str, StateEntry] = await unit.load_states(k for p in prepared for k in p.state_keys)
            candidates: list[tuple[_Prepared, ParseResult]] = []
            seen: set[str] = set()
            for item in prepared:
                if item.key in seen:  # the same record twice in one batch (a stage that skips is not a copy)
                    summary.duplicates += 1
                    continue
                state = ctx.with_state({k: overlay[k] for k in item.state_keys if k in overlay})
                try:
                    result = as_bad_input(MalformedRecord, MalformedRecord, _interpret, connector, item.record, state)
                except MalformedRecord as exc:
                    reject(item.raw, exc.reason)
                    continue
                if not result.events and not result.state_updates:
                    why = result.skipped or "no_entitlement_change"
                    summary.skipped += 1
                    summary.skipped_by_reason[why] += 1
                    continue
                overlay.update(result.state_updates)
                candidates.append((item, result))
                seen.add(item.key)

            fresh = await unit.claim(item.key for item, _ in candidates)
            events: list[Envelope] = []
            states: dict[str, StateEntry] = {}
            for item, result in candidates:
                if item.key not in fresh:
                    summary.duplicates += 1
                    continue
                if result.events:
                    events += result.events
                    summary.records_published += 1
                else:
                    summary.skipped += 1
                    summary.skipped_by_reason[result.skipped or "state_only"] += 1
                states.update(result.state_updates)

            await self._sink.publish(events)
            await self._sink.reject(rejected)
            await unit.save_states(states)
            await self._link_aliases(unit, events)

        summary.events_published = len(events)
        summary.dead_lettered = len(rejected)
        self._record_metrics(metric_input, summary, events, time.perf_counter() - started)
        return summary

    async def _link_aliases(self, unit: Any, events: Sequence[Envelope]) -> None:
        links: dict[str, set[str]] = {}
        for event in events:
            principal = event.key.principal if isinstance(event, GrantEvent) else getattr(event, "principal", None)
            aliases = getattr(event, "principal_aliases", ())
            if principal and aliases:
                links.setdefault(principal, set()).update(aliases)
        conflicts = await unit.link_aliases([(p, sorted(a)) for p, a in sorted(links.items())])
        for conflict in conflicts:
            log.warning("alias conflict; identities not merged", names=conflict.names, identities=conflict.identities)

    def _rejected(self, value: bytes, reason: str, origin: Origin) -> Rejected:
        return Rejected(
            value=value,
            reason=reason,
            origin=origin.label,
            partition=origin.partition,
            offset=origin.offset,
            headers=origin.headers,
        )

    def _record_metrics(
        self, metric_input: str, summary: IngestSummary, events: Sequence[Envelope], seconds: float
    ) -> None:
        for why, count in summary.skipped_by_reason.items():
            self._metrics.skipped.labels(self._metrics.service, metric_input, why).inc(count)
        if summary.duplicates:
            self._metrics.duplicates.labels(self._metrics.service, metric_input).inc(summary.duplicates)
        if summary.dead_lettered:
            self._metrics.dead_letters.labels(self._metrics.service, metric_input, "malformed").inc(
                summary.dead_lettered
            )
        if events:
            self._metrics.published(getattr(self._sink, "grants_topic", "grants"), len(events))
            self._metrics.count_events(events)
        self._metrics.observe(metric_input, seconds)
