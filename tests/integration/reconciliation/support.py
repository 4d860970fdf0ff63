"""A reconciler on unique topics against the real broker: in-process (faust app in the test's event loop) or
as a `python -m reconciliation` subprocess (for kill tests)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord

from closeloop.contracts.alerts import DriftAlert, parse_alert
from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import cloudevents_headers, encode, kafka_key
from closeloop.contracts.grants import SnapshotMarker
from closeloop.kafka import producer
from closeloop.progress_beacon import ProgressBeacon
from closeloop.settings import KafkaSettings
from reconciliation.app import Reconciler
from reconciliation.bootstrap import in_process as running_reconciler
from reconciliation.settings import ReconciliationSettings
from tests.support.kafka_helpers import read_topic, unique
from tests.unit.reconciliation.scenarios import GRACE, GRANTS, RECORDS, TICKETS

REPO_ROOT = Path(__file__).resolve().parents[3]
PROGRESS_INTERVAL_S = 0.2

POLICY_ENV = {
    "grant_before_approval_grace": GRACE,
    "closed_removal_grace": GRACE,
    "fulfilment_grace": GRACE,
    "record_settle_grace": GRACE,
    "expiry_grace": timedelta(seconds=1),
    "timer_interval_s": 0.5,
    "commit_interval_s": 0.5,
    "session_timeout_s": 6.0,
    "expiry_required_resources": ("okta:adminrole:*",),
    "itsm_delivery_allowance": timedelta(0),
}


def reconciler_settings(tmp: Path, **overrides: Any) -> ReconciliationSettings:
    tag = unique("rc").split(".", 1)[1]
    values: dict[str, Any] = {
        "app_id": f"closeloop-reconciliation-test-{tag}",
        "tickets_topic": f"test.rc.tickets.{tag}",
        "grants_topic": f"test.rc.grants.{tag}",
        "entitlements_topic": f"test.rc.entitlements.{tag}",
        "alerts_topic": f"test.rc.alerts.{tag}",
        "data_dir": tmp,
        **POLICY_ENV,
        **overrides,
    }
    return ReconciliationSettings(**values)


def settings_env(settings: ReconciliationSettings) -> dict[str, str]:
    """The same settings as CLOSELOOP_RECONCILIATION_* variables, for a subprocess."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None or name == "webhook_secret":
            continue
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        env[f"CLOSELOOP_RECONCILIATION_{name.upper()}"] = text
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Inputs:
    """Publishes scenario inputs to the reconciler's topics, the way the upstream services do."""

    kafka: KafkaSettings
    settings: ReconciliationSettings
    producer: AIOKafkaProducer
    partitions: int = 3

    def topic(self, role: str) -> str:
        return {
            TICKETS: self.settings.tickets_topic,
            GRANTS: self.settings.grants_topic,
            RECORDS: self.settings.entitlements_topic,
        }[role]

    async def send(self, role: str, event: Envelope) -> None:
        topic = self.topic(role)
        if isinstance(event, SnapshotMarker):
            # Connectors publish markers to every partition, so every partition's consumer sees them.
            for partition in range(self.partitions):
                await self.producer.send_and_wait(
                    topic, encode(event), partition=partition, headers=cloudevents_headers(event)
                )
            return
        await self.producer.send_and_wait(
            topic, encode(event), key=kafka_key(event), headers=cloudevents_headers(event)
        )

    async def send_all(self, inputs: list[tuple[str, Envelope]]) -> None:
        for role, event in inputs:
            await self.send(role, event)


@dataclass
class Alerts:
    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)

    @property
    def alerts(self) -> list[DriftAlert]:
        return [parse_alert(r.value)[0] for r in self.records if r.value is not None]

    def about(self, key: str) -> list[DriftAlert]:
        return [a for a in self.alerts if a.entitlement_key == key]


async def read_alerts(kafka: KafkaSettings, topic: str, *, until_count: int = 0, timeout_s: float = 20.0) -> Alerts:
    records = await read_topic(
        kafka, topic, until=lambda r: until_count > 0 and len(r) >= until_count, timeout_s=timeout_s
    )
    return Alerts(records)


@asynccontextmanager
async def running_inputs(
    kafka: KafkaSettings, settings: ReconciliationSettings, *, progress: tuple[str, ...] = (TICKETS, GRANTS)
) -> AsyncIterator[Inputs]:
    """A producer for the scenario inputs; for the `progress` roles it also publishes the progress records
    request-intake and the connectors publish (every input sent is acknowledged before the next one)."""
    prod = producer(kafka)
    await prod.start()
    beacons = [
        ProgressBeacon(prod, topic, f"test-{role}@inputs", "closeloop/test", interval_s=PROGRESS_INTERVAL_S)
        for role, topic in ((TICKETS, settings.tickets_topic), (GRANTS, settings.grants_topic))
        if role in progress
    ]
    tasks = [asyncio.create_task(beacon.run()) for beacon in beacons]
    try:
        yield Inputs(kafka, settings, prod)
    finally:
        for beacon in beacons:
            beacon.stop()
        await asyncio.gather(*tasks)
        await prod.stop()


@asynccontextmanager
async def in_process(kafka: KafkaSettings, settings: ReconciliationSettings) -> AsyncIterator[Reconciler]:
    """A reconciler in this event loop; ready (assigned, recovered) when the block starts."""
    async with running_reconciler(settings, kafka) as reconciler:
        yield reconciler


class Subprocess:
    """`python -m reconciliation` with the test's settings; kill() is SIGKILL, not a graceful stop."""

    def __init__(self, kafka: KafkaSettings, settings: ReconciliationSettings, log_path: Path) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            **settings_env(settings),
            "CLOSELOOP_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "CLOSELOOP_RECONCILIATION_OPS_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciliation"], cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    async def wait_ready(self, timeout_s: float = 60) -> None:
        import aiohttp

        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.process is not None
                assert self.process.poll() is None, self.log_path.read_text()[-3000:]
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"reconciler not ready; log:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=60)
