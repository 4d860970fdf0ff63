"""Running connectors service for integration tests: unique topics, real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiokafka import ConsumerRecord

from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import decode
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import dlq
from connectors.bootstrap import ConnectorsService, build_service
from connectors.settings import ConnectorsSettings
from tests.support.infra import REPO_ROOT
from tests.support.kafka_helpers import read_for, read_topic, unique

OKTA_SECRET = "integration-okta-secret-0123456789"
HOOK_SECRET = "integration-hook-secret-0123456789"
BEARER = {"Authorization": f"Bearer {HOOK_SECRET}"}
OKTA_AUTH = {"Authorization": OKTA_SECRET}


def auth_for(source: str) -> dict[str, str]:
    return OKTA_AUTH if source == "okta" else BEARER


@dataclass
class Running:
    service: ConnectorsService
    settings: ConnectorsSettings
    kafka: KafkaSettings
    base_url: str
    http: aiohttp.ClientSession

    @property
    def grants_topic(self) -> str:
        return self.settings.grants_topic

    async def post(self, source: str, body: bytes, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        response = await self.http.post(
            f"{self.base_url}/v1/hooks/{source}", data=body, headers=auth_for(source) if headers is None else headers
        )
        await response.read()
        return response

    async def events(self, tag: str, count: int, timeout_s: float = 20.0) -> list[Envelope]:
        """Wait for `count` events of the records tagged `tag` on the grants topic; return them decoded."""
        records = await read_topic(
            self.kafka, self.grants_topic, until=lambda rs: len(tagged(rs, tag)) >= count, timeout_s=timeout_s
        )
        return [decode(r.value) for r in tagged(records, tag)]

    async def events_after(self, tag: str, seconds: float = 2.0) -> list[Envelope]:
        """Everything tagged `tag` once `seconds` passed (to check that nothing more was published)."""
        return [decode(r.value) for r in tagged(await read_for(self.kafka, self.grants_topic, seconds), tag)]

    def duplicates_seen(self, source: str) -> float:
        metrics = self.service.ingestion.metrics
        value = metrics.registry.get_sample_value(
            "closeloop_duplicates_total", {"service": "connectors", "input": f"kafka:{source}"}
        )
        return value or 0.0

    async def wait_for_raw_duplicate(self, source: str, before: float, timeout_s: float = 20.0) -> None:
        """Wait until the raw-topic consumer recognised one more record as already processed."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.duplicates_seen(source) <= before:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the raw {source} record was not consumed as a duplicate in {timeout_s}s")
            await asyncio.sleep(0.1)

    async def dead_letters(self, count: int, timeout_s: float = 20.0) -> list[ConsumerRecord[bytes, bytes]]:
        return await read_topic(
            self.kafka, dlq(self.grants_topic), until=lambda rs: len(rs) >= count, timeout_s=timeout_s
        )


def tagged(records: list[ConsumerRecord[bytes, bytes]], tag: str) -> list[ConsumerRecord[bytes, bytes]]:
    return [r for r in records if r.value is not None and tag.encode() in r.value]


@asynccontextmanager
async def running_service(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, **overrides: Any
) -> AsyncIterator[Running]:
    prefix = unique("t-conn")
    settings = ConnectorsSettings(
        ops_host="127.0.0.1",
        ops_port=0,
        grants_topic=f"{prefix}.iam.grants.v1",
        raw_topic_prefix=f"{prefix}.iam.raw.",
        group_id=f"{prefix}-group",
        okta_secret=OKTA_SECRET,
        hook_secret=HOOK_SECRET,
        k8s_cluster=f"cluster-{prefix[-10:]}",  # the binding cache is per cluster: isolate test runs
        alias_file=None,
        **overrides,
    )
    service = await build_service(settings, kafka_settings, database_settings)
    tasks = [asyncio.create_task(loop()) for loop in service.runtime.loops]
    http = aiohttp.ClientSession()
    try:
        yield Running(service, settings, kafka_settings, f"http://127.0.0.1:{service.server.port}", http)
    finally:
        await http.close()
        for stop in service.runtime.stoppers:
            stop()
        _, pending = await asyncio.wait(tasks, timeout=10) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await service.runtime.close()


def new_tag() -> str:
    return uuid.uuid4().hex[:12]


def tag_ids(source: str, body: Any, tag: str) -> Any:
    """A copy of a fixture body whose vendor record ids carry `tag` (so each test's records are new)."""
    body = copy.deepcopy(body)

    def record(r: Any) -> None:
        if not isinstance(r, dict):
            return
        if source == "okta" and "uuid" in r:
            r["uuid"] = f"{r['uuid']}-{tag}"
        elif source == "cloudtrail":
            target = r.get("detail", r)
            target["eventID"] = f"{target.get('eventID', 'evt')}-{tag}"
        elif source == "entra":
            target = r["properties"] if isinstance(r.get("properties"), dict) else r
            target["id"] = f"{target.get('id', 'id')}-{tag}"
        elif source == "github":
            r["_document_id"] = f"{r.get('_document_id', 'doc')}-{tag}"
        elif source == "k8s":
            if isinstance(r.get("properties"), dict) and isinstance(r["properties"].get("log"), str):
                inner = json.loads(r["properties"]["log"])
                inner["auditID"] = f"{inner['auditID']}-{tag}"
                r["properties"]["log"] = json.dumps(inner)
            elif "protoPayload" in r:
                r["insertId"] = f"{r['insertId']}-{tag}"
                r["operation"]["id"] = r["insertId"]
            else:
                r["auditID"] = f"{r.get('auditID', 'audit')}-{tag}"
        elif source == "vault":
            r["request"]["id"] = f"{r['request']['id']}-{tag}"
            r["request"]["namespace"] = {"id": f"ns-{tag}", "path": f"ns-{tag}/"}  # cached lists are per namespace

    if isinstance(body, list):
        for item in body:
            record(item)
    elif source == "okta" and isinstance(body.get("data"), dict):
        for item in body["data"]["events"]:
            record(item)
    elif source == "cloudtrail" and "Records" in body:
        for item in body["Records"]:
            record(item)
    elif source == "k8s" and body.get("kind") == "EventList":
        for item in body["items"]:
            item["auditID"] = f"{item['auditID']}-{tag}"
    elif source == "entra" and "value" in body:
        for item in body["value"]:
            record(item)
    else:
        record(body)
    return body


async def run_cli(svc: Running, *args: str) -> tuple[int, str]:
    """`closeloop <args>` as an operator runs it, pointed at this test's topics."""
    env = {
        **os.environ,
        "CLOSELOOP_CONNECTORS_GRANTS_TOPIC": svc.settings.grants_topic,
        "CLOSELOOP_CONNECTORS_RAW_TOPIC_PREFIX": svc.settings.raw_topic_prefix,
        "CLOSELOOP_CONNECTORS_K8S_CLUSTER": svc.settings.k8s_cluster,
        "CLOSELOOP_KAFKA_BOOTSTRAP": svc.kafka.bootstrap,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "closeloop_cli.main",
        *args,
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, output.decode(errors="replace")
