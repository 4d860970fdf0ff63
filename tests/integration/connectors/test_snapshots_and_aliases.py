"""Snapshots framed on every partition (SDK and CLI); the identity alias table fed by events and config."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from closeloop import kafka
from closeloop.connector_sdk import GrantPublisher, LiveEntitlement, identity_of, publish_snapshot
from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import decode
from closeloop.contracts.grants import GrantEvent, SnapshotMarker, SnapshotPhase
from closeloop.contracts.identity import IdentityKind
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import TopicSpec, ensure_topics
from connectors.bootstrap import load_aliases
from tests.integration.connectors.harness import new_tag, run_cli, running_service, tag_ids
from tests.support.kafka_helpers import read_topic, unique
from tests.unit.connectors.support import fixture

pytestmark = pytest.mark.integration


def check_framing(records: list[ConsumerRecord[bytes, bytes]], snapshot_id: str, partitions: int, grants: int) -> None:
    by_partition: dict[int, list[Envelope]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_partition[record.partition].append(decode(record.value))
    assert len(by_partition) == partitions
    total = 0
    for events in by_partition.values():
        assert isinstance(events[0], SnapshotMarker)
        assert events[0].phase is SnapshotPhase.STARTED
        assert isinstance(events[-1], SnapshotMarker)
        assert events[-1].phase is SnapshotPhase.COMPLETED
        assert events[-1].grant_count == grants
        middle = events[1:-1]
        assert all(isinstance(e, GrantEvent) and e.snapshot_id == snapshot_id for e in middle)
        total += len(middle)
    assert total == grants
    marker_ids = [e.event_id for evs in by_partition.values() for e in evs if isinstance(e, SnapshotMarker)]
    assert len(set(marker_ids)) == 2 * partitions  # every partition's copy has its own id


async def test_sdk_snapshot_is_framed_on_every_partition(kafka_settings: KafkaSettings) -> None:
    topic = unique("t-snap.iam.grants.v1")
    await ensure_topics(kafka_settings, [TopicSpec(topic, 3_600_000)], partitions=3)
    producer = kafka.producer(kafka_settings)
    await producer.start()
    try:
        listing = [
            LiveEntitlement(f"okta:user:u{i}@acme.example", "okta:group:00g1engadmins", "member", IdentityKind.HUMAN)
            for i in range(5)
        ]
        result = await publish_snapshot(
            GrantPublisher(producer, topic),
            source_system="okta",
            scope="okta:group:00g1engadmins",
            entitlements=listing,
        )
    finally:
        await producer.stop()
    assert result.grant_count == 5
    assert result.partitions == (0, 1, 2)
    records = await read_topic(kafka_settings, topic, until=lambda rs: len(rs) >= 11)
    check_framing(records, result.snapshot_id, partitions=3, grants=5)


async def test_cli_snapshot(kafka_settings: KafkaSettings, database_settings: DatabaseSettings, tmp_path: Path) -> None:
    async with running_service(kafka_settings, database_settings) as svc:
        listing = tmp_path / "live.jsonl"
        rows = [
            {
                "principal": "github:user:lena-dev",
                "resource": "github:org:acme-corp",
                "privilege": "member",
                "principal_kind": "human",
            },
            {
                "principal": "github:app:renovate",
                "resource": "github:org:acme-corp",
                "privilege": "installed",
                "principal_kind": "application",
            },
        ]
        listing.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        snapshot_id = f"snap-{new_tag()}"
        code, output = await run_cli(
            svc, "snapshot", "github", "github:org:acme-corp", str(listing), "--snapshot-id", snapshot_id
        )
        assert code == 0, output
        partitions = svc.kafka.partitions
        records = await read_topic(
            svc.kafka,
            svc.grants_topic,
            until=lambda rs: sum(snapshot_id.encode() in r.value for r in rs) >= 2 * partitions + 2,
        )
        mine = [r for r in records if snapshot_id.encode() in r.value]
        check_framing(mine, snapshot_id, partitions=partitions, grants=2)


async def test_aliases_from_events_and_from_config(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, owner_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    tag = new_tag()
    async with running_service(kafka_settings, database_settings) as svc:
        record = tag_ids("okta", fixture("okta", "group_membership_add"), tag)
        record["target"][0]["alternateId"] = f"user-{tag}@acme.example"
        record["target"][0]["id"] = f"00u{tag}"
        assert (await svc.post("okta", json.dumps(record).encode())).status == 200
        await svc.events(tag, 1)
        pool = svc.service.ingestion.pool
        identity = await identity_of(pool, f"okta:user:00u{tag}")
        assert identity == f"user-{tag}@acme.example"
        assert await identity_of(pool, f"okta:user:user-{tag}@acme.example") == identity
        assert await identity_of(pool, f"email:user-{tag}@acme.example") == identity

        config = tmp_path / "aliases.yaml"
        config.write_text(
            f"identities:\n  - id: user-{tag}@acme.example\n    aliases:\n      - github:user:gh-{tag}\n"
            f"      - aws:user:arn:aws:iam::111122223333:user/u-{tag}\n"
        )
        assert await load_aliases(pool, config) == 3  # the email itself and the two configured names
        assert await identity_of(pool, f"github:user:gh-{tag}") == identity
        origin = await owner_pool.fetchval("SELECT origin FROM identity_links WHERE name = $1", f"github:user:gh-{tag}")
        assert origin == "operator"
        code, output = await run_cli(svc, "aliases", "resolve", f"aws:user:arn:aws:iam::111122223333:user/u-{tag}")
        assert code == 0, output
        assert identity in output
