"""reconciliation: join throughput against a raw consumer, grant-to-alert latency at 1,000 events/s, and the
memory of the join state per 100,000 live entitlements.

- Throughput: the same pre-filled grants topic is read by a plain aiokafka consumer (the baseline: fetch
  only) and by a fresh reconciler (decode, route by principal through the join topic, fold, evaluate all
  thirteen rules, write the changelogs). Grants are approved-looking (grace of an hour) so no alert
  traffic skews the join figure. The ratio is reconciler events/s over raw events/s.
- Latency: grants at 1,000 events/s for 10 s; one in ten has no ticket and raises UNTICKETED_GRANT (grace 0),
  the others were approved beforehand. The latency is the alert record's timestamp minus the grant's event
  time, with the default settle window (0.3 s: findings open once the key has been quiet that long) and
  with settle 0 (the floor).
- Alert capacity: the worst case, a backlog in which every grant raises an alert; alerts per second.
- Memory: 100,000 governed entitlements (ticket, grant, record) folded into the join state, stored as the
  faust tables store them (JSON-able dicts), measured with tracemalloc; the ratio is to the state's
  serialized (changelog) size.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from closeloop.contracts.codec import cloudevents_headers, encode
from closeloop.contracts.entitlements import EntitlementEvent, TicketRef
from closeloop.contracts.grants import GrantEvent
from closeloop.contracts.identity import EntitlementKey
from closeloop.contracts.tickets import RequestedAccess, TicketEvent
from closeloop.kafka import client_options, producer
from closeloop.metrics import ServiceMetrics
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import TopicSpec, ensure_topics
from reconciliation.apply_grant import apply_grant
from reconciliation.apply_record import apply_record
from reconciliation.apply_status import index_key
from reconciliation.bootstrap import build
from reconciliation.join_engine import new_state
from reconciliation.merge_ticket import merge_ticket, put_ticket
from reconciliation.settings import ReconciliationSettings

THROUGHPUT_EVENTS = 20_000
RATE = 1_000
LATENCY_SECONDS = 10
MEMORY_ENTITLEMENTS = 100_000
CAPACITY_ALERTS = 10_000


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def _grant(k: EntitlementKey, at: datetime) -> GrantEvent:
    event: GrantEvent = GrantEvent.create(
        occurred_at=at,
        source="okta://bench.okta.com",
        correlation_id=uuid.uuid4().hex,
        action="grant",
        key=k,
        source_system="okta",
        vendor_event_id=uuid.uuid4().hex,
        vendor_event_type="group.user_membership.add",
    )
    return event


def _ticket(k: EntitlementKey, at: datetime, number: str) -> TicketEvent:
    event: TicketEvent = TicketEvent.create(
        occurred_at=at,
        source="closeloop/request-intake",
        correlation_id=uuid.uuid4().hex,
        system="servicenow",
        ticket_id=number,
        ticket_number=number,
        kind="access_request",
        transition="approved",
        state="approved",
        requested_for=k.principal,
        access=RequestedAccess(system="okta", resource=k.resource, privilege=k.privilege),
        entitlement=k,
        requested_until=at + timedelta(days=90),
        owner="owner@example.com",
    )
    return event


def _record(k: EntitlementKey, at: datetime, number: str) -> EntitlementEvent:
    event: EntitlementEvent = EntitlementEvent.create(
        occurred_at=at,
        source="closeloop/provisioning",
        correlation_id=uuid.uuid4().hex,
        key=k,
        change="activated",
        status="active",
        owner="owner@example.com",
        tickets=(TicketRef(system="servicenow", ticket_id=number, ticket_number=number, kind="access_request"),),
        granted_at=at,
        expires_at=at + timedelta(days=90),
        record_version=1,
    )
    return event


def _key(i: int, tag: str) -> EntitlementKey:
    return EntitlementKey(
        principal=f"okta:user:u{i}.{tag}@example.com", resource=f"okta:group:00g{i % 50}", privilege="member"
    )


def _settings(tag: str, tmp: Path, **overrides: Any) -> ReconciliationSettings:
    return ReconciliationSettings(
        app_id=f"closeloop-reconciliation-bench-{tag}",
        tickets_topic=f"bench.rc.tickets.{tag}",
        grants_topic=f"bench.rc.grants.{tag}",
        entitlements_topic=f"bench.rc.entitlements.{tag}",
        alerts_topic=f"bench.rc.alerts.{tag}",
        data_dir=tmp,
        # The inputs here are published straight to the topics, without request-intake and the connectors'
        # progress records: these figures are the join's own (bench_watermarks measures the watermark gate).
        watermark_inputs=(),
        **overrides,
    )


async def _start(settings: ReconciliationSettings, kafka: KafkaSettings) -> tuple[Any, asyncio.Task[None]]:
    reconciler, _ = await build(settings, kafka, ServiceMetrics("reconciliation"))
    task = asyncio.create_task(reconciler.run())
    while not await reconciler.ready():
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    return reconciler, task


async def _stop(reconciler: Any, task: asyncio.Task[None]) -> None:
    reconciler.request_stop()
    await asyncio.wait_for(task, 60)


async def _raw_consume(kafka: KafkaSettings, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(kafka, "bench-raw"),
        group_id=f"bench-raw-{_tag()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen = 0
        started = None
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            if started is None and batch:
                started = time.perf_counter()
            seen += sum(len(records) for records in batch.values())
        return count / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()


async def throughput(kafka: KafkaSettings, tmp: Path) -> list[dict[str, Any]]:
    tag = _tag()
    settings = _settings(
        tag, tmp, grant_before_approval_grace=timedelta(hours=1), record_settle_grace=timedelta(hours=1)
    )
    await ensure_topics(kafka, [TopicSpec(settings.grants_topic, retention_ms=3_600_000)])
    prod = producer(kafka)
    await prod.start()
    try:
        now = datetime.now(UTC)
        futures = []
        for i in range(THROUGHPUT_EVENTS):
            event = _grant(_key(i, tag), now)
            futures.append(
                await prod.send(
                    settings.grants_topic,
                    encode(event),
                    key=str(event.key).encode(),
                    headers=cloudevents_headers(event),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await prod.stop()
    raw_eps = await _raw_consume(kafka, settings.grants_topic, THROUGHPUT_EVENTS)
    reconciler, task = await _start(settings, kafka)
    try:
        started = time.perf_counter()
        await _joined(reconciler, THROUGHPUT_EVENTS)
        elapsed = time.perf_counter() - started
    finally:
        await _stop(reconciler, task)
    eps = THROUGHPUT_EVENTS / elapsed
    return [
        {"metric": "raw aiokafka consumer", "value": raw_eps, "unit": "events/s"},
        {
            "metric": "reconciler join throughput",
            "value": eps,
            "unit": "events/s",
            "ratio_to": "raw aiokafka consumer",
            "ratio": eps / raw_eps,
        },
    ]


async def latency(kafka: KafkaSettings, tmp: Path, settle: timedelta, alert_every: int) -> list[dict[str, Any]]:
    """Grants at RATE/s for LATENCY_SECONDS; one in `alert_every` has no ticket (the others were approved
    before the clock started), so it raises UNTICKETED_GRANT (grace 0)."""
    tag = _tag()
    settings = _settings(tag, tmp, grant_before_approval_grace=timedelta(0), join_settle=settle)
    total = RATE * LATENCY_SECONDS
    approved = [i for i in range(total) if i % alert_every != 0]
    prod = producer(kafka)
    await prod.start()
    await ensure_topics(kafka, [TopicSpec(settings.tickets_topic, retention_ms=3_600_000)])
    now = datetime.now(UTC)
    pending = []
    for i in approved:
        event = _ticket(_key(i, tag), now, f"RITM{i:07d}")
        pending.append(await prod.send(settings.tickets_topic, encode(event), key=str(event.entitlement).encode()))
    await asyncio.gather(*pending)
    reconciler, task = await _start(settings, kafka)
    sent_at: dict[bytes, datetime] = {}
    try:
        await _joined(reconciler, len(approved))
        chunk = RATE // 20
        began = time.perf_counter()
        futures = []
        for step in range(total // chunk):
            for i in range(step * chunk, (step + 1) * chunk):
                k = _key(i, tag)
                event = _grant(k, datetime.now(UTC))
                if i % alert_every == 0:
                    sent_at[str(k).encode()] = event.occurred_at
                futures.append(
                    await prod.send(
                        settings.grants_topic, encode(event), key=str(k).encode(), headers=cloudevents_headers(event)
                    )
                )
            delay = began + (step + 1) * 0.05 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*futures)
        achieved = total / (time.perf_counter() - began)
        latencies = await _alert_latencies(kafka, settings.alerts_topic, sent_at)
    finally:
        await prod.stop()
        await _stop(reconciler, task)
    label = f"{100 // alert_every}% alerting, settle {settle.total_seconds():g}s"
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98]
    return [
        {"metric": f"grant->alert p50 at {RATE} grants/s ({label})", "value": p50 * 1000, "unit": "ms"},
        {
            "metric": f"grant->alert p99 at {RATE} grants/s ({label})",
            "value": p99 * 1000,
            "unit": "ms",
            "ratio_to": "p50",
            "ratio": p99 / p50,
        },
        {
            "metric": f"alerts received ({label})",
            "value": float(len(latencies)),
            "unit": f"of {len(sent_at)}, grants sent at {achieved:.0f}/s",
        },
    ]


async def alert_capacity(kafka: KafkaSettings, tmp: Path) -> list[dict[str, Any]]:
    """Worst case: a backlog of unticketed grants, every one raising an alert; alerts per second until done."""
    tag = _tag()
    settings = _settings(tag, tmp, grant_before_approval_grace=timedelta(0))
    count = CAPACITY_ALERTS
    await ensure_topics(kafka, [TopicSpec(settings.grants_topic, retention_ms=3_600_000)])
    prod = producer(kafka)
    await prod.start()
    try:
        now = datetime.now(UTC)
        pending = []
        for i in range(count):
            event = _grant(_key(i, tag), now)
            pending.append(await prod.send(settings.grants_topic, encode(event), key=str(event.key).encode()))
        await asyncio.gather(*pending)
    finally:
        await prod.stop()
    reconciler, task = await _start(settings, kafka)
    try:
        started = time.perf_counter()
        while True:
            sent = reconciler.extra.alerts.labels("UNTICKETED_GRANT", "create")._value.get()
            if sent >= count:
                break
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"only {sent} of {count} alerts")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        await _stop(reconciler, task)
    return [{"metric": "alert capacity (every grant alerts)", "value": count / elapsed, "unit": "alerts/s"}]


async def _joined(reconciler: Any, count: int, timeout_s: float = 600) -> None:
    started = time.perf_counter()
    while True:
        if reconciler.joined >= count:
            return
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"the reconciler joined only {reconciler.joined} of {count} inputs")
        await asyncio.sleep(0.02)


async def _alert_latencies(kafka: KafkaSettings, topic: str, sent_at: dict[bytes, datetime]) -> list[float]:
    consumer = AIOKafkaConsumer(
        topic, **client_options(kafka, "bench-alerts"), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    latencies: dict[bytes, float] = {}
    deadline = time.monotonic() + 60
    try:
        while len(latencies) < len(sent_at) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    if r.key in sent_at and r.key not in latencies:
                        latencies[r.key] = r.timestamp / 1000 - sent_at[r.key].timestamp()
    finally:
        await consumer.stop()
    return list(latencies.values())


def memory() -> list[dict[str, Any]]:
    """Join state of MEMORY_ENTITLEMENTS governed entitlements, as the faust memory store holds it."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    tag = "mem"
    # Build the inputs first so only the state is measured.
    inputs = []
    for i in range(MEMORY_ENTITLEMENTS):
        k = _key(i, tag)
        number = f"RITM{i:07d}"
        inputs.append((k, _ticket(k, base, number), _grant(k, base), _record(k, base, number)))
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    entitlements: dict[str, dict[str, Any]] = {}
    principals: dict[str, dict[str, Any]] = {}
    for k, t, g, r in inputs:
        state = new_state(str(k))
        state = state.model_copy(
            update={"tickets": put_ticket((), merge_ticket(None, t, principal=k.principal, key=str(k)), 20)}
        )
        state = apply_record(apply_grant(state, g), r)
        entitlements[str(k)] = state.dump()
        principals[k.principal] = index_key(None, k.principal, str(k)).dump()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    used = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    serialized = sum(len(json.dumps(v, separators=(",", ":"))) + len(k) for k, v in entitlements.items())
    serialized += sum(len(json.dumps(v, separators=(",", ":"))) + len(k) for k, v in principals.items())
    per_100k = used * 100_000 / MEMORY_ENTITLEMENTS
    return [
        {
            "metric": "join state per 100k live entitlements",
            "value": per_100k / 2**20,
            "unit": "MiB",
            "ratio_to": "serialized (changelog) size",
            "ratio": used / serialized,
        },
    ]


async def run(kafka_settings: KafkaSettings, database_settings: DatabaseSettings) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-rc-") as folder:
        tmp = Path(folder)
        rows += await throughput(kafka_settings, tmp)
        rows += await latency(kafka_settings, tmp, timedelta(milliseconds=300), alert_every=10)
        rows += await latency(kafka_settings, tmp, timedelta(0), alert_every=10)
        rows += await alert_capacity(kafka_settings, tmp)
    rows += memory()
    for row in rows:
        row["benchmark"] = "bench_reconciliation"
    return rows


if __name__ == "__main__":
    for row in asyncio.run(run(KafkaSettings(), DatabaseSettings())):
        print(row)
