"""A running request-intake (real aiohttp app on a free port, real Kafka, real PostgreSQL), unique topics."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import dlq
from request_intake.bootstrap import Intake, assemble
from request_intake.settings import IntakeSettings
from tests.support.kafka_helpers import unique
from tests.unit.request_intake.fixtures import DATA

SN_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
GENERIC_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
JIRA_SECRET = secrets.token_hex(32)


@dataclass
class RunningIntake:
    intake: Intake
    settings: IntakeSettings
    tasks: list[asyncio.Task[None]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.intake.port}"

    @property
    def tickets(self) -> str:
        return self.settings.tickets_topic

    @property
    def dead_letters(self) -> str:
        """Where ServiceNow payloads that cannot be mapped go, by webhook or raw record: the raw topic's DLQ."""
        return dlq(self.settings.servicenow_raw_topic)

    async def stop(self) -> None:
        for stop in self.intake.runtime.stoppers:
            stop()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 20)
        await self.intake.runtime.close()


Starter = Callable[..., Awaitable[RunningIntake]]


async def start_intake(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, **overrides: Any
) -> RunningIntake:
    values: dict[str, Any] = {
        "http_port": 0,
        "tickets_topic": unique("it.intake.tickets"),
        "servicenow_raw_topic": unique("it.intake.raw.servicenow"),
        "jira_raw_topic": unique("it.intake.raw.jira"),
        "generic_raw_topic": unique("it.intake.raw.generic"),
        "group_id": unique("it-intake"),
        "servicenow_secret": SN_SECRET,
        "generic_secret": GENERIC_SECRET,
        "jira_secret": JIRA_SECRET,
        "mapping_file": DATA / "jira" / "site_mapping.yaml",
        "purge_interval_s": 1.0,
        "shutdown_grace_s": 5.0,
    }
    values.update(overrides)
    settings = IntakeSettings(**values)
    intake = await assemble(settings, kafka_settings, database_settings)
    tasks = [asyncio.create_task(loop()) for loop in intake.runtime.loops]
    return RunningIntake(intake, settings, tasks)


@pytest.fixture(scope="module")
async def running(kafka_settings: KafkaSettings, database_settings: DatabaseSettings) -> AsyncIterator[RunningIntake]:
    service = await start_intake(kafka_settings, database_settings)
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session
