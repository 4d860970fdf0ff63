"""The noise scenario: a burst of benign ticket/grant pairs through the real ingress, request-intake paused in
the middle and the reconciler restarted mid-burst; with some real drift mixed in.

Each benign pair is an approved ServiceNow RITM (closed complete) and the matching Okta group membership, with
canonical ids. The Okta events go to the connectors' raw topic first (grants before tickets), the ServiceNow
records to request-intake's raw topic in shuffled order (a closed revision may overtake its approval). Half way
through the tickets request-intake stops; it resumes after `pause_s`, long after every grace window ended in
event time. The reconciler is down from the end of the grants until the intake has paused (an outage it
catches up from), then runs through the pause. Drift: Okta memberships nobody
asked for (UNTICKETED_GRANT) and closed-complete RITMs whose membership never appears (FULFILMENT_MISSING).

Used by the integration test (a few hundred pairs, seconds of pause) and by `make bench` (10,000 pairs,
60 s pause). Detection latency is measured from the moment both inputs' progress records had passed the
finding's due time (plus the delivery allowance) to the alert record.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from closeloop.contracts.alerts import AlertActivity, DriftAlert, DriftRule, parse_alert
from closeloop.contracts.codec import decode
from closeloop.contracts.progress import StreamProgress, is_stream_progress
from closeloop.kafka import client_options, producer
from closeloop.runtime import Runtime
from closeloop.settings import DatabaseSettings, KafkaSettings, ProgressSettings
from closeloop.topics import DAY_MS, TopicSpec, ensure_topics
from closeloop_demo import payloads as vendor
from connectors.bootstrap import build_service
from connectors.settings import ConnectorsSettings
from reconciliation.bootstrap import in_process
from reconciliation.settings import ReconciliationSettings
from request_intake.bootstrap import assemble
from request_intake.settings import IntakeSettings


@dataclass(frozen=True)
class BurstPlan:
    pairs: int
    drift: int  # of each kind: unticketed grants, and fulfilled tickets whose grant never appears
    pause_s: float
    # The ServiceNow records reach the raw topic up to (publishing time + the intake stop) after their
    # event time: the grace window plus the ITSM delivery allowance must cover that delivery delay, as in a
    # deployment (the run reports the delay it had).
    grace: timedelta = timedelta(seconds=10)
    itsm_allowance: timedelta = timedelta(seconds=10)
    stall_limit: timedelta = timedelta(minutes=5)
    progress_interval_s: float = 0.25
    seed: int = 14
    # False: the reconciler judges absence by the clock alone (the baseline the watermarks are measured against).
    watermarks: bool = True


@dataclass
class BurstResult:
    expected: set[tuple[str, DriftRule]]
    alerts: list[DriftAlert]
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    # From the records' event time to the last of them on the raw topics (the "ITSM delivery delay").
    delivery_delay_s: float = 0.0

    @property
    def creates(self) -> list[DriftAlert]:
        return [a for a in self.alerts if a.activity is AlertActivity.CREATE]

    @property
    def closes(self) -> list[DriftAlert]:
        return [a for a in self.alerts if a.activity is AlertActivity.CLOSE]

    @property
    def false_creates(self) -> list[DriftAlert]:
        return [a for a in self.creates if (a.entitlement_key, a.rule) not in self.expected]


@dataclass
class _Running:
    runtime: Runtime
    tasks: list[asyncio.Task[None]]

    async def stop(self) -> None:
        for stop in self.runtime.stoppers:
            stop()
        _, pending = await asyncio.wait(self.tasks, timeout=self.runtime.shutdown_grace_s + 5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.runtime.close()


def _start(runtime: Runtime) -> _Running:
    loops: list[Callable[[], Coroutine[Any, Any, None]]] = runtime.loops
    return _Running(runtime, [asyncio.create_task(loop()) for loop in loops])


@dataclass(frozen=True)
class _Topics:
    tag: str

    @property
    def servicenow_raw(self) -> str:
        return f"bench.noise.{self.tag}.itsm.raw.servicenow"

    @property
    def okta_raw(self) -> str:
        return f"bench.noise.{self.tag}.iam.raw.okta"

    @property
    def tickets(self) -> str:
        return f"bench.noise.{self.tag}.itsm.tickets.v1"

    @property
    def grants(self) -> str:
        return f"bench.noise.{self.tag}.iam.grants.v1"

    @property
    def alerts(self) -> str:
        return f"bench.noise.{self.tag}.drift.alerts.v1"


def _ritm(number: str, sys_id: str, login: str, group: str, *, closed: bool) -> dict[str, Any]:
    variables = {
        "requested_for": login,
        "requested_for_kind": "human",
        "access_system": "okta",
        "request_kind": "access_request",
        "access_owner": "platform.lead@example.com",
        "business_justification": "noise scenario",
        "access_resource": f"okta:group:{group}",
        "access_privilege": "member",
    }
    return vendor.servicenow_item(
        sys_id=sys_id,
        number=number,
        table="sc_req_item",
        state="3" if closed else "1",
        approval="approved",
        stage="complete" if closed else "fulfillment",
        mod_count=2 if closed else 1,
        variables=variables,
        short_description=f"access for {login}",
    )


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


@dataclass
class _Burst:
    okta: list[bytes]
    servicenow: list[bytes]
    expected: set[tuple[str, DriftRule]]
    # (key, rule) -> the event time at which the finding became due
    due: dict[tuple[str, DriftRule], datetime]
    built_at: datetime


def _build(plan: BurstPlan, tag: str) -> _Burst:
    rng = random.Random(plan.seed)
    now = datetime.now(UTC)
    okta: list[bytes] = []
    servicenow: list[bytes] = []
    expected: set[tuple[str, DriftRule]] = set()
    due: dict[tuple[str, DriftRule], datetime] = {}

    def membership(login: str, user_id: str, group: str) -> None:
        okta.append(_json(vendor.okta_group_membership("add", login, user_id, group, group)))

    def tickets(number: str, login: str, group: str) -> None:
        sys_id = vendor.new_sys_id()
        servicenow.append(_json(_ritm(number, sys_id, login, group, closed=False)))
        servicenow.append(_json(_ritm(number, sys_id, login, group, closed=True)))

    for i in range(plan.pairs):
        login, group = f"u{i}.{tag}@example.com", f"00g{tag}{i % 50}"
        membership(login, f"00u{tag}{i}", group)
        tickets(f"RITM{tag}{i:06d}", login, group)
    for j in range(plan.drift):
        login, group = f"d{j}.{tag}@example.com", f"00gd{tag}{j % 10}"
        membership(login, f"00ud{tag}{j}", group)
        k = (f"okta:user:{login}|okta:group:{group}|member", DriftRule.UNTICKETED_GRANT)
        expected.add(k)
        due[k] = now + plan.grace
        login, group = f"f{j}.{tag}@example.com", f"00gf{tag}{j % 10}"
        tickets(f"RITM{tag}F{j:05d}", login, group)
        k = (f"okta:user:{login}|okta:group:{group}|member", DriftRule.FULFILMENT_MISSING)
        expected.add(k)
        due[k] = now.replace(microsecond=0) + plan.grace  # ServiceNow stamps to the second
    rng.shuffle(okta)
    rng.shuffle(servicenow)
    return _Burst(okta, servicenow, expected, due, now)


async def _produce(kafka: KafkaSettings, topic: str, values: list[bytes]) -> None:
    client = producer(kafka, "noise-burst")
    await client.start()
    try:
        futures = [await client.send(topic, value, key=uuid.uuid4().bytes) for value in values]
        for future in futures:
            await future
    finally:
        await client.stop()


async def _read(kafka: KafkaSettings, topic: str, *, idle_s: float = 1.0) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything on `topic` now (stops after `idle_s` without records)."""
    consumer = AIOKafkaConsumer(
        topic, **client_options(kafka, "noise-burst-read"), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < idle_s:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            if any(batch.values()):
                idle_since = time.monotonic()
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


def _alerts(records: list[ConsumerRecord[bytes, bytes]]) -> list[tuple[DriftAlert, datetime]]:
    return [
        (parse_alert(r.value)[0], datetime.fromtimestamp(r.timestamp / 1000, UTC))
        for r in records
        if r.value is not None
    ]


def _passed_at(records: list[ConsumerRecord[bytes, bytes]], partitions: int) -> list[tuple[datetime, datetime]]:
    """(watermark, when) pairs at which the stream's lowest partition watermark rose, in order."""
    latest: dict[int, datetime] = {}
    steps: list[tuple[datetime, datetime]] = []
    progress = [r for r in records if is_stream_progress(r.headers)]
    for record in sorted(progress, key=lambda r: r.timestamp):
        event = decode(record.value)
        if not isinstance(event, StreamProgress) or event.closing:
            continue
        latest[event.partition] = event.watermark
        if len(latest) == partitions:
            low = min(latest.values())
            if not steps or low > steps[-1][0]:
                steps.append((low, datetime.fromtimestamp(record.timestamp / 1000, UTC)))
    return steps


def _first_pass(steps: list[tuple[datetime, datetime]], required: datetime) -> datetime | None:
    return next((when for mark, when in steps if mark >= required), None)


async def run_burst(
    plan: BurstPlan, kafka: KafkaSettings, database: DatabaseSettings, data_dir: Path, *, settle_timeout_s: float
) -> BurstResult:
    started = time.monotonic()
    tag = uuid.uuid4().hex[:8]
    topics = _Topics(tag)
    names = (topics.servicenow_raw, topics.okta_raw, topics.tickets, topics.grants, topics.alerts)
    await ensure_topics(kafka, [TopicSpec(name, retention_ms=DAY_MS, has_dlq=False) for name in names])
    progress = ProgressSettings(interval_s=plan.progress_interval_s, instance=f"noise-{tag}")
    reconciler_settings = ReconciliationSettings(
        app_id=f"closeloop-reconciliation-noise-{tag}",
        tickets_topic=topics.tickets,
        grants_topic=topics.grants,
        entitlements_topic=f"bench.noise.{tag}.entitlements.v1",
        alerts_topic=topics.alerts,
        data_dir=data_dir,
        grant_before_approval_grace=plan.grace,
        fulfilment_grace=plan.grace,
        itsm_delivery_allowance=plan.itsm_allowance,
        watermark_inputs=("tickets", "grants") if plan.watermarks else (),
        input_stall_limit=plan.stall_limit,
        timer_interval_s=0.25,
        commit_interval_s=0.5,
        session_timeout_s=6.0,
    )
    intake_settings = IntakeSettings(
        http_port=0,
        tickets_topic=topics.tickets,
        servicenow_raw_topic=topics.servicenow_raw,
        jira_raw_topic=f"bench.noise.{tag}.itsm.raw.jira",
        group_id=f"noise-intake-{tag}",
        shutdown_grace_s=5.0,
    )
    connectors_settings = ConnectorsSettings(
        ops_port=0,
        grants_topic=topics.grants,
        raw_topic_prefix=f"bench.noise.{tag}.iam.raw.",
        group_id=f"noise-connectors-{tag}",
        sources=["okta"],
        alias_file=None,
        shutdown_grace_s=5.0,
    )
    burst = _build(plan, tag)
    half = len(burst.servicenow) // 2

    async def start_intake() -> _Running:
        intake = await assemble(intake_settings, kafka, database, progress_settings=progress)
        return _start(intake.runtime)

    connectors = _start((await build_service(connectors_settings, kafka, database, progress)).runtime)
    intake = await start_intake()
    try:
        async with in_process(reconciler_settings, kafka, timeout_s=90):
            await _produce(kafka, topics.okta_raw, burst.okta)  # grants first
        # The reconciler is down (an outage) while the rest of the burst comes in and request-intake pauses.
        await _produce(kafka, topics.servicenow_raw, burst.servicenow[:half])
        await intake.stop()
        await _produce(kafka, topics.servicenow_raw, burst.servicenow[half:])
        delivered_at = datetime.now(UTC)
        # Restarted, it catches up on grants and half the tickets while the other half waits behind the intake.
        async with in_process(reconciler_settings, kafka, timeout_s=90):
            await asyncio.sleep(plan.pause_s)
            intake = await start_intake()
            deadline = time.monotonic() + settle_timeout_s
            while time.monotonic() < deadline:
                found = {(a.entitlement_key, a.rule) for a, _ in _alerts(await _read(kafka, topics.alerts))}
                if burst.expected <= found:
                    break
                await asyncio.sleep(1)
            # Long enough for any wrongly raised alert to show up too.
            await asyncio.sleep((plan.grace + plan.itsm_allowance).total_seconds() + 3)
    finally:
        await intake.stop()
        await connectors.stop()
    alerts = _alerts(await _read(kafka, topics.alerts))
    tickets_steps = _passed_at(await _read(kafka, topics.tickets, idle_s=0.5), kafka.partitions)
    grants_steps = _passed_at(await _read(kafka, topics.grants, idle_s=0.5), kafka.partitions)
    latencies = []
    for alert, at in alerts:
        due = burst.due.get((alert.entitlement_key, alert.rule))
        if alert.activity is not AlertActivity.CREATE or due is None:
            continue
        passed = [_first_pass(tickets_steps, due + plan.itsm_allowance), _first_pass(grants_steps, due)]
        if all(p is not None for p in passed):
            latencies.append(max(0.0, (at - max(p for p in passed if p is not None)).total_seconds()))
    return BurstResult(
        expected=burst.expected,
        alerts=[a for a, _ in alerts],
        latencies_s=latencies,
        elapsed_s=time.monotonic() - started,
        delivery_delay_s=(delivered_at - burst.built_at).total_seconds(),
    )
