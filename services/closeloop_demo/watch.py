"""Follow the alert, command and record topics from the moment the demo starts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from closeloop import topics
from closeloop.contracts.alerts import DriftAlert, parse_alert
from closeloop.kafka import client_options
from closeloop.settings import KafkaSettings


@dataclass
class Observed:
    alerts: list[DriftAlert] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    on_alert: Callable[[DriftAlert, dict[str, Any]], None] | None = None


class TopicWatcher:
    def __init__(
        self,
        kafka: KafkaSettings,
        alerts_topic: str = topics.DRIFT_ALERTS,
        commands_topic: str = topics.PROVISIONING_COMMANDS,
        entitlements_topic: str = topics.ENTITLEMENTS,
    ) -> None:
        self._consumer = AIOKafkaConsumer(**client_options(kafka, "demo-watch"), enable_auto_commit=False)
        self._alerts_topic = alerts_topic
        self._commands_topic = commands_topic
        self._entitlements_topic = entitlements_topic
        self.observed = Observed()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        names = (self._alerts_topic, self._commands_topic, self._entitlements_topic)
        partitions = []
        for name in names:
            for partition in self._consumer.partitions_for_topic(name) or await self._partitions(name):
                partitions.append(TopicPartition(name, partition))
        self._consumer.assign(partitions)
        ends = await self._consumer.end_offsets(partitions)
        for tp, offset in ends.items():
            self._consumer.seek(tp, offset)
        self._task = asyncio.create_task(self._run())

    async def _partitions(self, name: str) -> set[int]:
        await self._consumer._client.force_metadata_update()  # aiokafka has no public metadata refresh
        return self._consumer.partitions_for_topic(name) or {0}

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for record in records:
                    if record.value is None:
                        continue
                    if tp.topic == self._alerts_topic:
                        try:
                            alert, document = parse_alert(record.value)
                        except ValueError:
                            continue
                        self.observed.alerts.append(alert)
                        if self.observed.on_alert:
                            self.observed.on_alert(alert, document)
                    elif tp.topic == self._commands_topic:
                        self.observed.commands.append(json.loads(record.value))
                    else:
                        self.observed.records.append(json.loads(record.value))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def wait_for(self, predicate: Callable[[Observed], bool], timeout_s: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if predicate(self.observed):
                return True
            await asyncio.sleep(0.2)
        return predicate(self.observed)
