"""At-least-once end to end: duplicate deliveries change nothing, and killing the service anywhere
(mid-transaction, mid-relay, mid-execution) and restarting it loses nothing and applies nothing twice:
after deduplication by event id the outputs are exactly the expected ones, byte for byte."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from closeloop.contracts.codec import decode
from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementChange, EntitlementEvent, EntitlementStatus
from closeloop.contracts.identity import EntitlementKey
from closeloop.record import derived_id, verify_chain
from closeloop.settings import KafkaSettings
from provisioning.settings import ProvisioningSettings
from tests.integration.provisioning.conftest import RecordDb
from tests.integration.provisioning.harness import (
    RunningService,
    eventually,
    producer_for,
    publish,
    service_settings,
    start_service,
)
from tests.support.kafka_helpers import read_topic
from tests.unit.provisioning.factories import grant, key, ticket

pytestmark = pytest.mark.integration

N = 40


async def scalar(db: RecordDb, sql: str) -> int:
    async with db.app.acquire() as conn:
        return int(await conn.fetchval(sql))


async def metric(service: RunningService, name: str) -> float:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{service.ops_port()}/metrics") as response,
    ):
        text = await response.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


async def test_duplicate_deliveries_change_nothing(kafka_settings: KafkaSettings, record_db: RecordDb) -> None:
    settings = service_settings()
    service = await start_service(settings, kafka_settings, record_db.settings)
    vault = key("vault:entity:e-dup", "vault:policy:prod-read", "attached")
    approval = ticket(vault, ticket_number="RITM0000777")
    redelivered = approval.model_copy(update={"event_id": "another-ingress-path"})  # same ticket, other event id
    try:
        async with producer_for(kafka_settings) as producer:
            await publish(producer, settings.tickets_topic, approval, approval, redelivered)
            await eventually(lambda: _eq(scalar(record_db, "SELECT count(*) FROM command_executions"), 1))
            granted = grant(vault)
            again = granted.model_copy(update={"event_id": "snapshot-listing-1"})  # the same grant seen in a snapshot
            await publish(producer, settings.grants_topic, granted, granted, again)
            await eventually(lambda: _ge(metric(service, "closeloop_duplicates_total"), 2))
            # Two ticket events, one ticket approval (counted once), two grant events.
            await eventually(lambda: _eq(scalar(record_db, "SELECT count(*) FROM processed_events"), 5))
            await eventually(lambda: _eq(scalar(record_db, "SELECT count(*) FROM outbox"), 0))
            assert await metric(service, "closeloop_skipped_total") >= 2  # the re-approval and the repeat grant
    finally:
        await service.stop()
    events = _entitlements(await read_topic(kafka_settings, settings.entitlements_topic, until=lambda rs: len(rs) >= 2))
    assert [(e.change, e.status) for e in _dedupe(events)] == [
        (EntitlementChange.REQUESTED, EntitlementStatus.PENDING),
        (EntitlementChange.ACTIVATED, EntitlementStatus.ACTIVE),
    ]
    commands = _commands(await read_topic(kafka_settings, settings.commands_topic, until=lambda rs: len(rs) >= 1))
    assert len({c.command_id for c in commands}) == 1
    assert await scalar(record_db, "SELECT count(*) FROM audit_log WHERE entity_type = 'entitlement'") == 2


async def test_kill_and_restart_mid_stream(kafka_settings: KafkaSettings, record_db: RecordDb) -> None:
    settings = service_settings(outbox_batch_size=7, batch_size=5)  # small batches: more places to die in
    keys = [key(f"vault:entity:e{i:03d}", "vault:policy:prod-read", "attached") for i in range(N)]
    approvals = [ticket(k, ticket_number=f"RITM{i:07d}") for i, k in enumerate(keys)]
    grants = [grant(k) for k in keys]

    async with producer_for(kafka_settings) as producer:
        await publish(producer, settings.tickets_topic, *approvals, *approvals[:10])  # some delivered twice

        async def pending_done() -> bool:
            return (
                await scalar(record_db, "SELECT count(*) FROM entitlements WHERE status = 'pending'") == N
                and await scalar(record_db, "SELECT count(*) FROM command_executions") == N
                and await scalar(record_db, "SELECT count(*) FROM outbox") == 0
            )

        remaining = await run_with_kills(settings, kafka_settings, record_db, pending_done, kills=2)
        assert max(remaining) > 0  # at least one kill landed with work still to do

        await publish(producer, settings.grants_topic, *grants, *grants[:10])

        async def active_done() -> bool:
            return (
                await scalar(record_db, "SELECT count(*) FROM entitlements WHERE status = 'active' AND version = 2")
                == N
                and await scalar(record_db, "SELECT count(*) FROM outbox") == 0
            )

        remaining = await run_with_kills(settings, kafka_settings, record_db, active_done, kills=2)
        assert max(remaining) > 0

    records = await read_topic(
        kafka_settings,
        settings.entitlements_topic,
        until=lambda rs: len({r.value for r in rs}) >= 2 * N,
        timeout_s=30,
    )
    by_id: dict[str, set[bytes]] = defaultdict(set)
    for record in records:
        event = decode(record.value, expected=EntitlementEvent)
        by_id[event.event_id].add(record.value)
        assert record.key == str(event.key).encode()  # keyed by entitlement for compaction
    assert set(by_id) == {derived_id("entitlement", str(k), str(v)) for k in keys for v in (1, 2)}
    assert all(len(values) == 1 for values in by_id.values())  # a re-sent event is byte-identical
    events = _dedupe(_entitlements(records))
    per_key: dict[EntitlementKey, list[tuple[int | None, EntitlementChange]]] = defaultdict(list)
    for event in events:
        per_key[event.key].append((event.record_version, event.change))
    assert all(
        sorted(v) == [(1, EntitlementChange.REQUESTED), (2, EntitlementChange.ACTIVATED)] for v in per_key.values()
    )

    commands = _commands(await read_topic(kafka_settings, settings.commands_topic, until=lambda rs: len(rs) >= N))
    assert {c.command_id for c in commands} == {derived_id("command", "grant", str(k), "1") for k in keys}

    # Each ticket event, each ticket's approval, each grant event: once.
    assert await scalar(record_db, "SELECT count(*) FROM processed_events") == 3 * N
    assert await scalar(record_db, "SELECT count(*) FROM audit_log WHERE entity_type = 'entitlement'") == 2 * N
    assert await scalar(record_db, "SELECT count(*) FROM audit_log WHERE action = 'grant_issued'") == N
    assert await scalar(record_db, "SELECT count(DISTINCT command_id) FROM command_executions") == N
    async with record_db.app.acquire() as conn:
        chain = await verify_chain(conn)
    assert chain.ok, chain.problem


async def run_with_kills(
    settings: ProvisioningSettings,
    kafka_settings: KafkaSettings,
    db: RecordDb,
    done: Callable[[], Awaitable[bool]],
    *,
    kills: int,
) -> list[int]:
    """Run the service; `kills` times, kill it right after it commits something new, and restart it.
    Returns, per kill, 1 if work was still left when it died (0 if it had already finished)."""
    left: list[int] = []
    service = await start_service(settings, kafka_settings, db.settings)
    try:
        for _ in range(kills):
            before = await scalar(db, "SELECT count(*) FROM audit_log")
            await eventually(
                lambda b=before: _gt(scalar(db, "SELECT count(*) FROM audit_log"), b), timeout_s=30, interval_s=0.005
            )
            left.append(0 if await done() else 1)
            await service.kill()
            service = await start_service(settings, kafka_settings, db.settings)
        await eventually(done, timeout_s=60)
    finally:
        await service.stop()
    assert service.failures() == []
    return left


def _entitlements(records: list) -> list[EntitlementEvent]:  # type: ignore[type-arg]
    return [e for e in (decode(r.value, expected=EntitlementEvent) for r in records) if isinstance(e, EntitlementEvent)]


def _commands(records: list) -> list[ProvisioningCommand]:  # type: ignore[type-arg]
    return [
        c
        for c in (decode(r.value, expected=ProvisioningCommand) for r in records)
        if isinstance(c, ProvisioningCommand)
    ]


def _dedupe(events: list[EntitlementEvent]) -> list[EntitlementEvent]:
    seen: dict[str, EntitlementEvent] = {}
    for event in events:
        seen.setdefault(event.event_id, event)
    return list(seen.values())


async def _eq(value: Awaitable[float], expected: float) -> bool:
    return await value == expected


async def _ge(value: Awaitable[float], expected: float) -> bool:
    return await value >= expected


async def _gt(value: Awaitable[float], expected: float) -> bool:
    return await value > expected
