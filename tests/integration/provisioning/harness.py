"""Run the provisioning service in-process, as `python -m provisioning` would, and stop or kill it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer, ConsumerRecord
from pydantic import SecretStr

from closeloop import kafka
from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import decode
from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementEvent
from closeloop.ops import HttpServer
from closeloop.runtime import Runtime
from closeloop.settings import DatabaseSettings, KafkaSettings
from provisioning.bootstrap import bootstrap
from provisioning.settings import ProvisioningSettings
from tests.support.kafka_helpers import read_topic, unique


def service_settings(
    *, okta_url: str | None = None, okta_token: str | None = None, **overrides: object
) -> ProvisioningSettings:
    prefix = unique("prov")
    values: dict[str, object] = {
        "tickets_topic": f"{prefix}.tickets",
        "grants_topic": f"{prefix}.grants",
        "entitlements_topic": f"{prefix}.entitlements",
        "commands_topic": f"{prefix}.commands",
        "group_id": f"{prefix}.group",
        "executor_group_id": f"{prefix}.executors",
        "ops_port": 0,
        "outbox_poll_interval_s": 0.2,
        "executor_backoff_base_s": 0.01,
        "executor_max_backoff_s": 0.05,
        "shutdown_grace_s": 5.0,
        "log_level": "WARNING",
    }
    if okta_url:
        values["okta_base_url"] = okta_url
        values["okta_token"] = SecretStr(okta_token or "")
    values.update(overrides)
    return ProvisioningSettings(**values)  # type: ignore[arg-type]


@dataclass
class RunningService:
    runtime: Runtime
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        """Graceful: ask every loop to stop, wait, close."""
        for stopper in self.runtime.stoppers:
            stopper()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 15)
        await self.runtime.close()

    async def kill(self) -> None:
        """A crash: cancel every loop wherever it is (mid-transaction, mid-publish), then drop the clients.

        The cancel is repeated until each task is gone: the shared ConsumerLoop retries its processor
        under tenacity, which catches BaseException, so a single cancel that lands mid-processing is
        absorbed as one failed attempt (that processing is rolled back, as in a crash).
        """
        deadline = time.monotonic() + 15
        while not all(task.done() for task in self.tasks):
            if time.monotonic() > deadline:
                raise AssertionError("the service did not die")
            for task in self.tasks:
                task.cancel()
            await asyncio.wait(self.tasks, timeout=0.05)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.runtime.close()

    def ops_port(self) -> int:
        """The port the ops server bound (the settings ask for 0, a free one)."""
        for closer in self.runtime.closers:
            server = getattr(closer, "__self__", None)
            if isinstance(server, HttpServer):
                return server.port
        raise AssertionError("the service has no ops server")

    def failures(self) -> list[BaseException]:
        return [t.exception() for t in self.tasks if t.done() and not t.cancelled() and t.exception() is not None]  # type: ignore[misc]


async def start_service(
    settings: ProvisioningSettings, kafka_settings: KafkaSettings, database_settings: DatabaseSettings
) -> RunningService:
    runtime = await bootstrap(settings, kafka_settings, database_settings)
    service = RunningService(runtime)
    service.tasks = [asyncio.create_task(loop()) for loop in runtime.loops]
    return service


@contextlib.asynccontextmanager
async def producer_for(kafka_settings: KafkaSettings):  # type: ignore[no-untyped-def]
    producer: AIOKafkaProducer = kafka.producer(kafka_settings)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def publish(producer: AIOKafkaProducer, topic: str, *events: Envelope) -> None:
    await kafka.publish_many(producer, topic, list(events))


def entitlement_events(records: list[ConsumerRecord[bytes, bytes]]) -> list[EntitlementEvent]:
    events = [decode(r.value, expected=EntitlementEvent) for r in records]
    return [e for e in events if isinstance(e, EntitlementEvent)]


def commands(records: list[ConsumerRecord[bytes, bytes]]) -> list[ProvisioningCommand]:
    events = [decode(r.value, expected=ProvisioningCommand) for r in records]
    return [e for e in events if isinstance(e, ProvisioningCommand)]


async def read_entitlements(
    kafka_settings: KafkaSettings,
    topic: str,
    until: Callable[[list[EntitlementEvent]], bool],
    timeout_s: float = 30.0,
) -> list[EntitlementEvent]:
    records = await read_topic(
        kafka_settings, topic, until=lambda rs: until(entitlement_events(rs)), timeout_s=timeout_s
    )
    return entitlement_events(records)


async def read_commands(
    kafka_settings: KafkaSettings,
    topic: str,
    until: Callable[[list[ProvisioningCommand]], bool],
    timeout_s: float = 30.0,
) -> list[ProvisioningCommand]:
    records = await read_topic(kafka_settings, topic, until=lambda rs: until(commands(rs)), timeout_s=timeout_s)
    return commands(records)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s")
