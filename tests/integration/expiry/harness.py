"""Run the expiry service (and, where a test needs it, provisioning) in-process against real Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiokafka import ConsumerRecord

from closeloop.contracts.codec import decode
from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementEvent
from closeloop.record import RecordTopics
from closeloop.record.confirmation import policy_document
from closeloop.runtime import Runtime
from closeloop.settings import DatabaseSettings, KafkaSettings, PolicySettings
from expiry.bootstrap import ExpiryService, build
from expiry.settings import ExpirySettings
from provisioning.bootstrap import bootstrap as provisioning_bootstrap
from provisioning.settings import ProvisioningSettings
from tests.support.kafka_helpers import read_topic, unique


def expiry_settings(**overrides: Any) -> ExpirySettings:
    prefix = unique("expiry")
    values: dict[str, Any] = {
        "tickets_topic": f"{prefix}.tickets",
        "grants_topic": f"{prefix}.grants",
        "entitlements_topic": f"{prefix}.entitlements",
        "commands_topic": f"{prefix}.commands",
        "group_id": f"{prefix}.group",
        "ops_port": 0,
        "sweep_interval_s": 1.0,
        "outbox_poll_interval_s": 0.2,
        "shutdown_grace_s": 5.0,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return ExpirySettings(**values)


def record_topics(settings: ExpirySettings) -> RecordTopics:
    return RecordTopics(
        entitlements=settings.entitlements_topic, commands=settings.commands_topic, grants=settings.grants_topic
    )


@dataclass
class Running:
    runtime: Runtime
    service: ExpiryService | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def start(cls, runtime: Runtime, service: ExpiryService | None = None) -> Running:
        running = cls(runtime, service)
        running.tasks = [asyncio.create_task(loop()) for loop in runtime.loops]
        return running

    async def stop(self) -> None:
        for stopper in self.runtime.stoppers:
            stopper()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 20)
        await self.runtime.close()

    def failures(self) -> list[BaseException]:
        return [e for t in self.tasks if t.done() and not t.cancelled() and (e := t.exception()) is not None]


async def start_provisioning(
    settings: ExpirySettings, kafka: KafkaSettings, database: DatabaseSettings, policy: PolicySettings | None = None
) -> Running:
    """Provisioning on the same topics (no executors): it records grants and confirms revokes."""
    provisioning = await provisioning_bootstrap(
        ProvisioningSettings(
            tickets_topic=settings.tickets_topic,
            grants_topic=settings.grants_topic,
            entitlements_topic=settings.entitlements_topic,
            commands_topic=settings.commands_topic,
            group_id=f"{settings.group_id}.provisioning",
            run_executors=False,
            ops_port=0,
            outbox_poll_interval_s=0.2,
            log_level="WARNING",
        ),
        kafka,
        database,
        policy_settings=policy,
    )
    return Running.start(provisioning)


async def start_expiry(
    settings: ExpirySettings, kafka: KafkaSettings, database: DatabaseSettings, policy: PolicySettings | None = None
) -> Running:
    service = await build(settings, kafka=kafka, database=database, policy=policy)
    return Running.start(service.runtime, service)


def policy_file(path: Path, confirmation: str) -> PolicySettings:
    """The packaged policy file with its `confirmation` section replaced (YAML flow mapping)."""
    document = policy_document()
    document["confirmation"] = yaml.safe_load(confirmation)
    path.write_text(yaml.safe_dump(document))
    return PolicySettings(file=path)


def entitlement_events(records: list[ConsumerRecord[bytes, bytes]]) -> list[EntitlementEvent]:
    return [e for r in records if isinstance(e := decode(r.value), EntitlementEvent)]


def command_events(records: list[ConsumerRecord[bytes, bytes]]) -> list[ProvisioningCommand]:
    return [e for r in records if isinstance(e := decode(r.value), ProvisioningCommand)]


async def read_commands(
    kafka: KafkaSettings, topic: str, until: Callable[[list[ProvisioningCommand]], bool], timeout_s: float = 60.0
) -> list[ProvisioningCommand]:
    records = await read_topic(kafka, topic, until=lambda rs: until(command_events(rs)), timeout_s=timeout_s)
    return command_events(records)


async def read_entitlements(
    kafka: KafkaSettings, topic: str, until: Callable[[list[EntitlementEvent]], bool], timeout_s: float = 60.0
) -> list[EntitlementEvent]:
    records = await read_topic(kafka, topic, until=lambda rs: until(entitlement_events(rs)), timeout_s=timeout_s)
    return entitlement_events(records)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s")
