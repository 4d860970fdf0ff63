"""connectors: vendor records parsed, deduplicated and published per second, per connector.

Each connector ingests N distinct records of its kind (fixtures of `tests/data/<source>/` with fresh ids
and principals) through the real ingestion: normalize, state cache (k8s, vault), claim in the
processed-records table (PostgreSQL), publish with acks=all, commit, in batches of 500 as replay does.
The figure is grant/status events published per second.

Baseline, same run and broker: raw aiokafka produce of N records of the same size with the same producer
settings (acks=all, idempotent), sent in batches and awaited. The ratio (connector / baseline) is the
figure to compare across machines; the baseline is measured again right before each connector,
since a shared machine drifts. Pure parse rate (no I/O) is reported alongside. N comes from
`CLOSELOOP_BENCH_CONNECTORS_COUNT` (default 3000).
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from closeloop import kafka
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import TopicSpec, ensure_topics
from connectors.bootstrap import open_ingestion
from connectors.envelopes import records_of
from connectors.ingest_records import Origin
from connectors.model import ParseContext
from connectors.registry import CONNECTORS
from connectors.settings import ConnectorsSettings

COUNT = int(os.environ.get("CLOSELOOP_BENCH_CONNECTORS_COUNT", "3000"))
BATCH = 500
DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
BASELINE = "raw aiokafka produce (acks=all, idempotent), same run"


def _load(source: str, name: str) -> Any:
    return json.loads((DATA / source / f"{name}.json").read_text())


def _okta(run: str, i: int) -> Any:
    record = _load("okta", "group_membership_add")
    record["uuid"] = f"bench-{run}-{i}"
    record["target"][0]["alternateId"] = f"user{i}@bench.example"
    record["target"][0]["id"] = f"00ubench{i}"
    return record


def _cloudtrail(run: str, i: int) -> Any:
    record = _load("cloudtrail", "attach_user_policy")
    record["eventID"] = f"bench-{run}-{i}"
    record["requestParameters"]["userName"] = f"svc-bench-{i}"
    return record


def _entra(run: str, i: int) -> Any:
    record = _load("entra", "add_member_to_group")
    record["id"] = f"Directory_bench_{run}_{i}"
    record["targetResources"][0]["userPrincipalName"] = f"user{i}@bench.example"
    record["targetResources"][0]["id"] = str(uuid.UUID(int=i))
    return record


def _github(run: str, i: int) -> Any:
    record = _load("github", "team_add_member")
    record["_document_id"] = f"bench-{run}-{i}"
    record["user"] = f"bench-user-{i}"
    return record


def _k8s(run: str, i: int) -> Any:
    record = _load("k8s", "crb_create")
    name = f"bench-{run}-{i}"
    record["auditID"] = name
    record["objectRef"]["name"] = name
    record["requestObject"]["metadata"]["name"] = name
    record["responseObject"]["metadata"].update(name=name, uid=str(uuid.uuid4()))
    return record


def _vault(run: str, i: int) -> Any:
    response = copy.deepcopy(_load("vault", "approle_role_write")[1])
    response["request"]["id"] = f"bench-{run}-{i}"
    response["request"]["path"] = f"auth/approle/role/bench-{run}-{i}"
    return response


GENERATORS: dict[str, Callable[[str, int], Any]] = {
    "okta": _okta,
    "cloudtrail": _cloudtrail,
    "entra": _entra,
    "github": _github,
    "k8s": _k8s,
    "vault": _vault,
}


async def _baseline(kafka_settings: KafkaSettings, topic: str, value: bytes, count: int) -> float:
    producer = kafka.producer(kafka_settings, client_suffix="bench-baseline")
    await producer.start()
    try:
        started = time.perf_counter()
        for offset in range(0, count, BATCH):
            futures = [
                await producer.send(topic, value, key=f"bench-{i}".encode())
                for i in range(offset, min(count, offset + BATCH))
            ]
            for future in futures:
                await future
        return count / (time.perf_counter() - started)
    finally:
        await producer.stop()


def _parse_rate(source: str, records: list[Any]) -> float:
    connector = CONNECTORS[source]
    ctx = ParseContext()
    started = time.perf_counter()
    events = 0
    for raw in records:
        record = connector.normalize(raw)
        events += len(connector.interpret(record, ctx).events)
    return events / (time.perf_counter() - started)


async def run(kafka_settings: KafkaSettings, database_settings: DatabaseSettings) -> list[dict[str, Any]]:
    run_id = uuid.uuid4().hex[:8]
    settings = ConnectorsSettings(
        grants_topic=f"bench-{run_id}.iam.grants.v1",
        raw_topic_prefix=f"bench-{run_id}.iam.raw.",
        k8s_cluster=f"bench-{run_id}",
        sources=list(GENERATORS),
        consume_raw_topics=False,
    )
    baseline_topic = f"bench-{run_id}.baseline"
    await ensure_topics(kafka_settings, [TopicSpec(baseline_topic, 3_600_000)])
    ingestion = await open_ingestion(settings, kafka_settings, database_settings)
    rows: list[dict[str, Any]] = []
    try:
        # Same-size payload as a typical grant event, for the baseline.
        sample = records_of(CONNECTORS["okta"], _okta(run_id, -1))
        value = json.dumps(sample[0]).encode()[:1200].ljust(1200, b" ")
        baselines: list[float] = []
        for source, generate in GENERATORS.items():
            records = [generate(run_id, i) for i in range(COUNT)]
            parse_rate = _parse_rate(source, records)
            # The shared machine drifts: each connector is compared with a baseline measured just before it.
            baseline = await _baseline(kafka_settings, baseline_topic, value, COUNT)
            baselines.append(baseline)
            origin = Origin(kind="replay", detail=f"bench-{source}")
            started = time.perf_counter()
            published = 0
            for offset in range(0, COUNT, BATCH):
                summary = await ingestion.ingest(source, records[offset : offset + BATCH], origin)
                published += summary.events_published
            rate = published / (time.perf_counter() - started)
            rows.append(
                {
                    "benchmark": "connectors",
                    "metric": f"{source}: events parsed and published",
                    "value": rate,
                    "unit": "events/s",
                    "ratio_to": BASELINE,
                    "ratio": rate / baseline,
                }
            )
            rows.append(
                {"benchmark": "connectors", "metric": f"{source}: parse only", "value": parse_rate, "unit": "events/s"}
            )
        rows.insert(
            0,
            {
                "benchmark": "connectors",
                "metric": "baseline produce (median)",
                "value": statistics.median(baselines),
                "unit": "records/s",
            },
        )
    finally:
        await ingestion.close()
    return rows
