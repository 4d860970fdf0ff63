"""`closeloop replay` of a day of Okta records, with the tickets of that day already delivered: the reconciler
raises the alerts live delivery raised (an unticketed membership still live) and nothing transient (a
membership approved a minute after it was made, one removed again inside the grace window)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from closeloop.contracts.alerts import AlertActivity, DriftRule
from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import decode
from closeloop.contracts.grants import GrantEvent
from closeloop.contracts.progress import StreamProgress
from closeloop.contracts.tickets import TicketTransition
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop_demo import payloads as vendor
from tests.integration.connectors.harness import Running, new_tag, run_cli, running_service
from tests.integration.reconciliation.support import in_process, read_alerts, reconciler_settings, running_inputs
from tests.support.kafka_helpers import read_topic
from tests.unit.reconciliation.scenarios import TICKETS, key, ticket

pytestmark = pytest.mark.integration

GRACE = timedelta(minutes=10)
PER_KIND = 8
FILLERS = 5


@pytest.fixture
async def connectors(kafka_settings: KafkaSettings, database_settings: DatabaseSettings) -> AsyncIterator[Running]:
    async with running_service(kafka_settings, database_settings, sources=["okta"]) as running:
        yield running


def membership(action: str, login: str, group: str, at: datetime) -> dict[str, Any]:
    event = vendor.okta_group_membership(action, login, f"00u{login[:10]}", group, group)
    event["published"] = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return event


async def test_replay_of_a_day_raises_what_live_delivery_raised_and_nothing_transient(
    kafka_settings: KafkaSettings, connectors: Running, tmp_path: Path
) -> None:
    settings = reconciler_settings(
        tmp_path,
        grants_topic=connectors.grants_topic,
        grant_before_approval_grace=GRACE,
        closed_removal_grace=GRACE,
        fulfilment_grace=GRACE,
    )
    tag = new_tag()[-8:]
    day_start = datetime.now(UTC) - timedelta(days=1)
    records: list[tuple[datetime, dict[str, Any]]] = []
    tickets = []
    expected = set()
    for i in range(PER_KIND):
        at = day_start + timedelta(hours=2 * i, minutes=i)
        login, group = f"ok{i}.{tag}@example.com", f"00gok{tag}{i}"
        records.append((at, membership("add", login, group, at)))  # approved a minute later
        k = key(f"okta:user:{login}", f"okta:group:{group}", "member")
        tickets.append(ticket(k, TicketTransition.APPROVED, at + timedelta(minutes=1), ticket_id=f"t-ok{i}{tag}"))

        login, group = f"un{i}.{tag}@example.com", f"00gun{tag}{i}"
        records.append((at, membership("add", login, group, at)))  # nobody asked for it
        expected.add((f"okta:user:{login}|okta:group:{group}|member", DriftRule.UNTICKETED_GRANT))

        login, group = f"rm{i}.{tag}@example.com", f"00grm{tag}{i}"
        records.append((at, membership("add", login, group, at)))  # removed again inside the grace window
        records.append((at + timedelta(minutes=9), membership("remove", login, group, at + timedelta(minutes=9))))
        for j in range(FILLERS):  # approved memberships made in between: the removal comes well after the add
            made = at + timedelta(minutes=1, seconds=20 * j)
            login, group = f"fi{i}x{j}.{tag}@example.com", f"00gfi{tag}{i}"
            records.append((made, membership("add", login, group, made)))
            k = key(f"okta:user:{login}", f"okta:group:{group}", "member")
            tickets.append(ticket(k, TicketTransition.APPROVED, made, ticket_id=f"t-fi{i}x{j}{tag}"))
    path = tmp_path / "okta-day.jsonl"
    path.write_text("".join(json.dumps(body) + "\n" for _, body in sorted(records, key=lambda r: r[0])))

    async with (
        in_process(kafka_settings, settings),
        running_inputs(kafka_settings, settings, progress=(TICKETS,)) as inputs,
    ):
        for event in tickets:  # delivered live, that day
            await inputs.send(TICKETS, event)
        code, output = await run_cli(connectors, "replay", "okta", str(path), "--batch-size", "1")
        assert code == 0, output
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            alerts = (await read_alerts(kafka_settings, settings.alerts_topic, timeout_s=1)).alerts
            if {(a.entitlement_key, a.rule) for a in alerts} >= expected:
                break
        await asyncio.sleep(3)  # a transient alert would show up by now
        alerts = (await read_alerts(kafka_settings, settings.alerts_topic, timeout_s=2)).alerts
    assert sorted((a.entitlement_key, a.rule, a.activity) for a in alerts) == sorted(
        (k, rule, AlertActivity.CREATE) for k, rule in expected
    )
    await assert_replay_held_the_watermark(kafka_settings, connectors.grants_topic)


async def assert_replay_held_the_watermark(kafka: KafkaSettings, topic: str) -> None:
    """On every partition, each replayed grant comes after a progress record of the replay that holds the
    watermark at or below the grant's time, and the replay's last record there says it is closing."""
    records = await read_topic(kafka, topic, until=lambda _: False, timeout_s=2, include_progress=True)
    by_partition: dict[int, list[Envelope]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_partition.setdefault(record.partition, []).append(decode(record.value))
    for partition, events in by_partition.items():
        held: datetime | None = None
        replay_records = [e for e in events if isinstance(e, StreamProgress) and "/replay-" in e.producer]
        assert replay_records, f"partition {partition}: the replay published no progress"
        assert replay_records[-1].closing
        for event in events:
            if isinstance(event, StreamProgress) and "/replay-" in event.producer and not event.closing:
                held = event.watermark
            elif isinstance(event, GrantEvent):
                assert held is not None, f"partition {partition}: a replayed grant came before the replay's hold"
                assert held <= event.occurred_at
