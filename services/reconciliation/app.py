"""The faust application: routers over the three input topics, the join agent, and the deadline timer.

Topology (faust-streaming implements no stream joins; this is the join, by hand):

    itsm.tickets.v1 ─┐ route-tickets ─┐
    iam.grants.v1  ──┤ route-grants  ─┼─▶ <app_id>-join (internal, keyed by principal) ─▶ join ─▶ drift.alerts.v1
    entitlements.v1 ─┘ route-records ─┘         ▲                                        │
                                                 └─────────── deadline ticks ◀── timer ◀──┘ (join state tables)

- Routers decode each raw record (DLQ `<topic>.dlq` on DecodeError) and re-key it by principal; snapshot
  markers and person-level tickets go to every join partition.
- The join agent folds a batch of inputs into the join state (five faust tables with changelog topics,
  partitioned like the join topic, recovered from their changelogs after a restart), evaluates the rules and
  emits alerts. Alerts are acknowledged by the broker before the batch's state is written: a crash repeats
  alerts (same deterministic ids, filtered by the alert ledger) and never loses one.
- The timer runs on every worker and only looks at keys of the join partitions this worker owns; it does not
  change state itself, it sends a tick through the join topic, so the owner evaluates it in order.
- Every agent runs with concurrency=1; the rules and state model know nothing of faust.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust
from faust.types import TP
from prometheus_client import Counter, Gauge, Histogram

from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import DecodeError, decode
from closeloop.contracts.entitlements import EntitlementEvent
from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged, SnapshotMarker
from closeloop.contracts.progress import StreamProgress
from closeloop.contracts.tickets import TicketEvent
from closeloop.dead_letter import DeadLetter
from closeloop.kafka import faust_credentials
from closeloop.logging import get_logger
from closeloop.metrics import ServiceMetrics
from closeloop.settings import KafkaSettings
from closeloop.topics import dlq
from reconciliation.continuity import Continuity, Verdict
from reconciliation.deadlines import DeadlineIndex
from reconciliation.input_stalled import STALL_PRINCIPAL
from reconciliation.join_engine import JoinEngine
from reconciliation.join_records import (
    ORIGIN_OFFSET,
    ORIGIN_PARTITION,
    ORIGIN_TOPIC,
    BadJoinRecord,
    Headers,
    Incoming,
    decode_join_record,
    forward_headers,
    header,
    tick_record,
    watch_record,
)
from reconciliation.ledger import AlertLedger
from reconciliation.routing import partition_for, principal_of_key, route
from reconciliation.rules.base import RulePolicy
from reconciliation.settings import ReconciliationSettings
from reconciliation.sinks.alert_record import AlertEncoder
from reconciliation.store import ENTITLEMENTS, TABLES, UnitOfWork, Write
from reconciliation.topic_meta import read_range, start_offsets
from reconciliation.watermarks import WatermarkBook

log = get_logger(__name__)

SERVICE = "reconciliation"
# Keys per tick record (bounded so a mass expiry does not make one oversized record).
TICK_KEYS_MAX = 2000
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def broadcast_kind(event: Envelope) -> str:
    if isinstance(event, SnapshotMarker):
        return "marker"
    if isinstance(event, StreamProgress):
        return "progress"
    return "person"


class FaustTables:
    """The join engine's table access over faust tables (their local store: this worker's partitions)."""

    def __init__(self, tables: dict[str, Any]) -> None:
        self._tables = tables

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        value = self._tables[table].data.get(key)
        return value if isinstance(value, dict) else None

    def items(self, table: str) -> list[tuple[str, dict[str, Any]]]:
        return list(self._tables[table].data.items())

    def write(self, write: Write) -> None:
        """Set the value locally and send it to the table's changelog partition (the key's join partition)."""
        table = self._tables[write.table]
        table.data[write.key] = write.value
        table.send_changelog(write.partition, write.key, write.value)

    def drop_except(self, keep: set[int], partitions: int) -> int:
        """Forget keys of partitions this worker no longer holds (faust's memory store keeps them otherwise)."""
        dropped = 0
        for name, table in self._tables.items():
            for key in list(table.data.keys()):
                owner = key.rsplit("@", 1)[-1] if name in ("snapshots", "people") else None
                partition = (
                    int(owner)
                    if owner is not None and owner.isdigit()
                    else partition_for(principal_of_key(key), partitions)
                )
                if partition not in keep:
                    del table.data[key]
                    dropped += 1
        return dropped


class ReconcilerMetrics:
    def __init__(self, metrics: ServiceMetrics) -> None:
        registry = metrics.registry
        self.alerts = Counter(
            "closeloop_reconciliation_alerts", "Alert records emitted", ["rule", "activity"], registry=registry
        )
        self.latency = Histogram(
            "closeloop_reconciliation_alert_latency_seconds",
            "From the triggering event's time to the alert's acknowledgement",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
            registry=registry,
        )
        self.deadlines = Gauge(
            "closeloop_reconciliation_deadlines", "Keys waiting for a deadline on this worker", registry=registry
        )
        self.holes = Counter(
            "closeloop_reconciliation_partition_holes",
            "Holes in a partition's delivered records that were re-read (faust skipped records)",
            ["topic"],
            registry=registry,
        )
        self.held = Gauge(
            "closeloop_reconciliation_held_findings",
            "Entitlements whose finding about something missing waits for an input watermark (this worker)",
            registry=registry,
        )
        self.input_lag = Gauge(
            "closeloop_reconciliation_input_lag_seconds",
            "Processing time minus the input's watermark (from its producers' progress records)",
            ["stream"],
            registry=registry,
        )
        self.batch = Histogram(
            "closeloop_reconciliation_join_batch_size",
            "Inputs per join batch",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000),
            registry=registry,
        )


class Reconciler:
    def __init__(
        self,
        settings: ReconciliationSettings,
        kafka: KafkaSettings,
        metrics: ServiceMetrics,
        *,
        grants_partitions: int,
        data_dir: Path,
        tickets_partitions: int | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.metrics = metrics
        self.extra = ReconcilerMetrics(metrics)
        self.clock = clock
        self.partitions = settings.join_partitions
        self.watermarks = WatermarkBook.from_settings(
            settings, tickets_partitions or grants_partitions, grants_partitions, clock()
        )
        self.engine = JoinEngine(
            RulePolicy.from_settings(settings),
            snapshot_copies=grants_partitions,
            max_tickets_per_key=settings.max_tickets_per_key,
            settle=settings.join_settle,
            watermarks=self.watermarks,
            hold_recheck=settings.watermark_hold_recheck,
            stall_limit=settings.input_stall_limit,
        )
        self._watched_at = 0.0
        self.encoder = AlertEncoder(
            ocsf_version=settings.ocsf_version,
            source=settings.event_source,
            log_name=settings.alerts_topic,
            data_sources=(settings.tickets_topic, settings.grants_topic, settings.entitlements_topic),
        )
        self.deadlines = DeadlineIndex()
        self.ledger = AlertLedger(kafka, settings.alerts_topic, tail_records=settings.ledger_tail_records)
        self._stop = asyncio.Event()
        self._owned: set[int] = set()
        self._rebuilt_at = 0.0
        self._assigned_once = False
        self._ledger_task: asyncio.Task[None] | None = None
        self._continuity: dict[str, Continuity] = {}
        # Join inputs handled since start (benchmarks and tests read it; Prometheus has the batch histogram).
        self.joined = 0

        self.app = faust.App(
            settings.app_id,
            broker=[f"kafka://{host.strip()}" for host in kafka.bootstrap.split(",") if host.strip()],
            broker_credentials=faust_credentials(kafka),
            broker_client_id=f"{kafka.client_id}-{SERVICE}",
            store="memory://",
            web_enabled=False,
            autodiscover=False,
            datadir=str(data_dir),
            topic_partitions=self.partitions,
            topic_replication_factor=kafka.replication_factor,
            producer_acks=-1,
            producer_linger=kafka.linger_ms / 1000,
            producer_max_batch_size=settings.producer_batch_bytes,
            producer_max_request_size=max(settings.producer_batch_bytes, 1_048_576),
            broker_commit_interval=settings.commit_interval_s,
            broker_session_timeout=settings.session_timeout_s,
            broker_heartbeat_interval=max(settings.session_timeout_s / 4, 1.0),
            consumer_auto_offset_reset="earliest",
            key_serializer="raw",
            value_serializer="raw",
        )
        self.join_topic_name = f"{settings.app_id}-join"
        self.join_topic = self.app.topic(
            self.join_topic_name,
            partitions=self.partitions,
            internal=True,
            retention=timedelta(days=7),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.tables = {
            name: self.app.Table(name, partitions=self.partitions)  # JSON keys and values (the default)
            for name in TABLES
        }
        self.store = FaustTables(self.tables)
        self._define_agents()

    # --- topology -----------------------------------------------------------------------------------------

    def _define_agents(self) -> None:
        s = self.settings
        inputs: list[tuple[str, str, tuple[type[Envelope], ...]]] = [
            ("route-tickets", s.tickets_topic, (TicketEvent, StreamProgress)),
            ("route-grants", s.grants_topic, (GrantEvent, PrincipalStatusChanged, SnapshotMarker, StreamProgress)),
            ("route-records", s.entitlements_topic, (EntitlementEvent,)),
        ]
        for name, topic_name, expected in inputs:
            topic = self.app.topic(
                topic_name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            )
            self.app.agent(topic, name=name, concurrency=1)(self._router(topic_name, expected))
        self.app.agent(self.join_topic, name="join", concurrency=1)(self._join_agent)
        self.app.timer(s.timer_interval_s, name="deadlines")(self._on_timer)
        self.app.on_partitions_assigned.connect(self._on_assigned)

    def _router(self, topic: str, expected: tuple[type[Envelope], ...]) -> Callable[[Any], Awaitable[None]]:
        async def agent(stream: Any) -> None:
            async for events in stream.take_events(self.settings.batch_max, within=self.settings.batch_within_s):
                await self._guarded(self.route_batch(topic, expected, await self.continuous(topic, events)))

        agent.__name__ = f"route_{topic.replace('.', '_')}"
        return agent

    async def _join_agent(self, stream: Any) -> None:
        async for events in stream.take_events(self.settings.batch_max, within=self.settings.batch_within_s):
            await self.ledger.ready.wait()
            await self._guarded(self.join_batch(await self.continuous(self.join_topic_name, events)))

    async def _guarded(self, work: Awaitable[None]) -> None:
        """Run one batch; anything unexpected (the broker refusing an alert, a failed re-read) stops the worker.

        The batch is then not acknowledged: after the restart it is processed again from the committed offsets,
        instead of faust's agent supervisor carrying on past it.
        """
        try:
            await work
        except Exception as exc:
            log.exception("batch failed; stopping the worker so it restarts from the committed offsets")
            await self.app.crash(exc)
            raise

    # --- continuity (see continuity.py for why) ------------------------------------------------------------

    async def continuous(self, stream: str, events: list[Any]) -> list[Incoming]:
        """The batch's records with any hole re-read (in order) and records already handled dropped."""
        continuity = self._continuity.setdefault(stream, Continuity())
        continuity.start_generation(self.app.consumer_generation_id)
        incoming = [Incoming.of(event.message) for event in events]
        unknown = continuity.unknown({(i.topic, i.partition) for i in incoming})
        if unknown:
            starts = await start_offsets(self.kafka, self.settings.app_id, unknown)
            for tp in unknown:
                first = min(i.offset for i in incoming if (i.topic, i.partition) == tp)
                continuity.learn(tp, starts.get(tp), first)
        ordered: list[Incoming] = []
        for item in incoming:
            tp = (item.topic, item.partition)
            verdict, expected = continuity.check(tp, item.offset)
            if verdict is Verdict.DUPLICATE:
                self.metrics.duplicate(item.topic)
                continue
            if verdict is Verdict.HOLE:
                missing = await read_range(self.kafka, item.topic, item.partition, expected, item.offset)
                log.warning(
                    "hole in a partition's records; re-read",
                    topic=item.topic,
                    partition=item.partition,
                    start=expected,
                    end=item.offset,
                    records=len(missing),
                )
                self.extra.holes.labels(item.topic).inc()
                ordered += [Incoming.of(record) for record in missing]
            ordered.append(item)
            continuity.advance(tp, item.offset)
        return ordered

    # --- routing --------------------------------------------------------------------------------------------

    async def route_batch(self, topic: str, expected: tuple[type[Envelope], ...], records: list[Incoming]) -> None:
        pending: list[Awaitable[Any]] = []
        for message in records:
            headers = message.headers
            self.metrics.received(topic)
            if message.value is None and topic == self.settings.entitlements_topic:
                self.metrics.skip(topic, "tombstone")
                continue
            try:
                decoded = decode(message.value, expected=expected)
            except DecodeError as exc:
                pending.append(
                    await self._dead_letter(
                        DeadLetter(
                            topic=topic,
                            value=message.value,
                            reason=exc.reason,
                            key=message.key,
                            partition=message.partition,
                            offset=message.offset,
                            original_headers=tuple(headers),
                        ),
                        "invalid",
                    )
                )
                continue
            routed = route(decoded)
            if routed.principal is not None:
                target = partition_for(routed.principal, self.partitions)
                forwarded = forward_headers("event", topic, message.partition, message.offset, headers)
                pending.append(
                    await self._send(self.join_topic_name, routed.principal.encode(), message.value, target, forwarded)
                )
            elif routed.broadcast:
                kind = broadcast_kind(decoded)
                forwarded = forward_headers(kind, topic, message.partition, message.offset, headers)
                for target in range(self.partitions):
                    pending.append(await self._send(self.join_topic_name, None, message.value, target, forwarded))
            else:
                self.metrics.skip(topic, routed.skip_reason or "unroutable")
        # The batch is acknowledged (and its offsets committed) only once everything it produced is durable.
        await asyncio.gather(*pending)

    async def _send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None, headers: Headers
    ) -> Awaitable[Any]:
        future: Awaitable[Any] = await self.app.producer.send(topic, key, value, partition, None, headers)
        return future

    async def _dead_letter(self, letter: DeadLetter, reason_class: str) -> Awaitable[Any]:
        log.warning("dead-lettered", topic=letter.topic, reason=letter.reason, offset=letter.offset)
        self.metrics.dead_lettered(letter.topic, reason_class)
        return await self._send(dlq(letter.topic), letter.key, letter.value, None, letter.headers(SERVICE))

    # --- the join -------------------------------------------------------------------------------------------

    async def join_batch(self, records: list[Incoming]) -> None:
        started = time.perf_counter()
        now = self.clock()
        uow = UnitOfWork(self.store, self.partitions)
        emissions = []
        letters: list[Awaitable[Any]] = []
        self.extra.batch.observe(len(records))
        for message in records:
            headers = message.headers
            try:
                item = decode_join_record(message.value, headers, message.partition)
            except BadJoinRecord as exc:
                letters.append(await self._dead_letter(self._join_letter(message, headers, str(exc)), "invalid"))
                continue
            savepoint = uow.savepoint()
            try:
                outcome = self.engine.handle(uow, item, now)
            except Exception as exc:
                # A bug on one input must not stop the join: keep the input for inspection and move on.
                log.exception("join failed for an input; dead-lettering", kind=item.kind)
                uow.rollback(savepoint)
                reason = f"join failed: {type(exc).__name__}: {exc}"
                letters.append(await self._dead_letter(self._join_letter(message, headers, reason), "processing_error"))
                continue
            if outcome.skipped:
                self.metrics.skip(self.join_topic_name, outcome.skipped)
            emissions.extend(outcome.emissions)

        sent = []
        for emission in emissions:
            record = self.encoder.encode(emission)
            if record.event_id in self.ledger:
                self.metrics.duplicate(self.settings.alerts_topic)
                continue
            sent.append(
                (
                    emission,
                    record,
                    await self._send(self.settings.alerts_topic, record.key, record.value, None, record.headers),
                )
            )
        # Alerts (and dead letters) are durable before the state that says they were sent.
        await asyncio.gather(*(future for _, _, future in sent), *letters)
        acked = self.clock()
        for emission, record, _ in sent:
            self.ledger.add(record.event_id)
            self.metrics.published(self.settings.alerts_topic)
            change = emission.change
            self.extra.alerts.labels(change.rule.value, change.activity.name.lower()).inc()
            trigger = emission.view.trigger
            if trigger is not None and trigger.kind == "event" and trigger.occurred_at is not None:
                self.extra.latency.observe(max((acked - trigger.occurred_at).total_seconds(), 0.0))

        dirty = uow.dirty_entitlements()
        for write in uow.writes():
            self.store.write(write)
        for state in dirty:
            self.deadlines.arm(state.key, state.next_check, partition_for(state.principal, self.partitions))
        self.extra.deadlines.set(len(self.deadlines))
        self.joined += len(records)
        self.metrics.observe(self.join_topic_name, time.perf_counter() - started)

    def _join_letter(self, message: Incoming, headers: Headers, reason: str) -> DeadLetter:
        origin_topic = header(headers, ORIGIN_TOPIC) or self.join_topic_name
        origin_partition = header(headers, ORIGIN_PARTITION)
        origin_offset = header(headers, ORIGIN_OFFSET)
        return DeadLetter(
            topic=origin_topic,
            value=message.value,
            reason=reason,
            key=message.key,
            partition=int(origin_partition) if origin_partition and origin_partition.isdigit() else message.partition,
            offset=int(origin_offset) if origin_offset and origin_offset.isdigit() else message.offset,
            original_headers=tuple(headers),
        )

    # --- deadlines --------------------------------------------------------------------------------------------

    def owned_partitions(self) -> set[int]:
        actives: set[TP] = self.app.assignor.assigned_actives()
        return {tp.partition for tp in actives if tp.topic == self.join_topic_name}

    def _kept_partitions(self) -> set[int]:
        assigned: set[TP] = self.app.assignor.assigned_actives() | self.app.assignor.assigned_standbys()
        names = {self.join_topic_name, *(t.changelog_topic.get_topic_name() for t in self.tables.values())}
        return {tp.partition for tp in assigned if tp.topic in names}

    def rebuild_deadlines(self, owned: set[int]) -> None:
        dropped = self.store.drop_except(self._kept_partitions() | owned, self.partitions)
        entries = []
        for key, raw in self.store.items(ENTITLEMENTS):
            at = raw.get("next_check")
            partition = partition_for(principal_of_key(key), self.partitions)
            if at and partition in owned:
                entries.append((key, datetime.fromisoformat(at), partition))
        self.deadlines.rebuild(entries)
        if self.watermarks is not None:
            self.watermarks.forget_partitions(owned)
        self._owned = owned
        self._rebuilt_at = time.monotonic()
        self.extra.deadlines.set(len(self.deadlines))
        log.info("deadline index rebuilt", partitions=sorted(owned), keys=len(entries), dropped=dropped)

    async def _on_timer(self) -> None:
        if self.app.rebalancing or self.app.in_recovery:
            return
        owned = self.owned_partitions()
        if owned != self._owned or time.monotonic() - self._rebuilt_at > self.settings.deadline_rescan_s:
            self.rebuild_deadlines(owned)
        if not owned:
            return
        await self._watch_inputs(owned)
        due = self.deadlines.pop_due(self.clock(), owned, timedelta(seconds=self.settings.tick_retry_s))
        by_partition: dict[int, list[str]] = {}
        for key, partition in due:
            by_partition.setdefault(partition, []).append(key)
        for partition, keys in by_partition.items():
            for start in range(0, len(keys), TICK_KEYS_MAX):
                value, headers = tick_record(keys[start : start + TICK_KEYS_MAX])
                # Fire and forget: an unanswered tick is re-armed after tick_retry_s.
                await self._send(self.join_topic_name, None, value, partition, headers)

    async def _watch_inputs(self, owned: set[int]) -> None:
        """Export input lags; ask the partition that judges INPUT_STALLED to look (when this worker owns it)."""
        book = self.watermarks
        if book is None or time.monotonic() - self._watched_at < self.settings.input_watch_interval_s:
            return
        self._watched_at = time.monotonic()
        now = self.clock()
        for stream in book.streams.values():
            self.extra.input_lag.labels(stream).set(book.lag(owned, stream, now)[1].total_seconds())
        self.extra.held.set(book.waiting())
        partition = partition_for(STALL_PRINCIPAL, self.partitions)
        if partition in owned:
            value, headers = watch_record()
            await self._send(self.join_topic_name, None, value, partition, headers)

    # --- rebalance, readiness, lifecycle ---------------------------------------------------------------------

    async def _on_assigned(self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        self._assigned_once = True
        self._owned = set()  # forces a deadline rebuild on the next tick
        self.ledger.ready.clear()
        if self._ledger_task is None or self._ledger_task.done():
            self._ledger_task = asyncio.create_task(self._reload_ledger())

    async def _reload_ledger(self) -> None:
        try:
            for attempt in range(1, 6):
                try:
                    await self.ledger.reload()
                    return
                except Exception as exc:  # the broker may be mid-rebalance; the join waits, it does not guess
                    log.warning("alert ledger reload failed", attempt=attempt, error=repr(exc))
                    await asyncio.sleep(min(2**attempt, 10))
            log.error("alert ledger not loaded; continuing without restart deduplication")
        finally:
            self.ledger.ready.set()

    async def ready(self) -> bool:
        return (
            self._assigned_once
            and not self.app.rebalancing
            and not self.app.in_recovery
            and self.ledger.ready.is_set()
            and not self._stop.is_set()
        )

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Run the faust app until asked to stop; raise if faust stopped by itself (crashed)."""
        await self.app.start()
        stopped = asyncio.create_task(self.app.wait_until_stopped())
        asked = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait([stopped, asked], return_when=asyncio.FIRST_COMPLETED)
        finally:
            asked.cancel()
            if not stopped.done():
                await self.app.stop()
            stopped.cancel()
            if self._ledger_task is not None:
                self._ledger_task.cancel()
        if not self._stop.is_set():
            raise RuntimeError(f"faust app stopped unexpectedly: {self.app.crash_reason!r}")
