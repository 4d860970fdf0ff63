"""The same record by hook, by raw topic and by replay has the same effect (and publishes once)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from closeloop import kafka
from closeloop.contracts.codec import header_value
from closeloop.contracts.grants import GrantEvent
from closeloop.settings import DatabaseSettings, KafkaSettings
from connectors.replay import replay_file
from tests.integration.connectors.harness import Running, new_tag, run_cli, running_service, tag_ids
from tests.support.kafka_helpers import read_topic
from tests.unit.connectors.support import fixture

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def svc(kafka_settings: KafkaSettings, database_settings: DatabaseSettings) -> AsyncIterator[Running]:
    async with running_service(kafka_settings, database_settings) as running:
        yield running


async def produce_raw(svc: Running, source: str, value: bytes) -> None:
    producer = kafka.producer(svc.kafka)
    await producer.start()
    try:
        await producer.send_and_wait(svc.settings.raw_topic(source), value)
    finally:
        await producer.stop()


@pytest.mark.parametrize(
    ("source", "name", "count"),
    [
        ("okta", "group_membership_remove", 1),
        ("cloudtrail", "s3_delivery_records", 2),
        ("entra", "remove_member_from_group_export", 1),
        ("github", "team_add_member", 1),
        ("k8s", "gke_protopayload_create", 1),
        ("vault", "token_create", 1),
    ],
)
async def test_raw_topic_then_hook_same_effect_once(svc: Running, source: str, name: str, count: int) -> None:
    tag = new_tag()
    body = json.dumps(tag_ids(source, fixture(source, name), tag)).encode()
    await produce_raw(svc, source, body)
    from_topic = await svc.events(tag, count)
    assert len(from_topic) == count
    response = await svc.post(source, body)
    assert response.status == 200
    summary = await response.json()
    assert summary["published_events"] == 0
    assert summary["duplicates"] >= 1
    assert len(await svc.events_after(tag, seconds=1.5)) == count


async def test_replay_cli_then_hook_then_raw_topic(svc: Running, tmp_path: Path) -> None:
    tag = new_tag()
    bodies = [tag_ids("okta", fixture("okta", name), tag) for name in ("group_membership_add", "api_token_create")]
    path = tmp_path / "okta-backfill.jsonl"
    path.write_text("\n".join(json.dumps(b) for b in bodies) + "\n")
    code, output = await run_cli(svc, "replay", "okta", str(path))
    assert code == 0, output
    assert "published events" in output
    events = await svc.events(tag, 2)
    assert {str(e.key) for e in events if isinstance(e, GrantEvent)} == {
        "okta:user:alice.ng@acme.example|okta:group:00g1engadmins000x697|member",
        "okta:apitoken:00T1deploytok000x697|okta:org:ops.admin@acme.example|token",
    }
    for body in bodies:
        assert (await (await svc.post("okta", json.dumps(body).encode())).json())["published_events"] == 0
        before = svc.duplicates_seen("okta")
        await produce_raw(svc, "okta", json.dumps(body).encode())
        await svc.wait_for_raw_duplicate("okta", before)
    code, output = await run_cli(svc, "replay", "okta", str(path))
    assert code == 0, output
    assert len(await svc.events_after(tag, seconds=2.0)) == 2


async def test_replay_of_a_cloudtrail_s3_object(svc: Running, tmp_path: Path) -> None:
    tag = new_tag()
    path = tmp_path / "111122223333_CloudTrail_us-east-1_20241015T0830Z.json"
    path.write_text(json.dumps(tag_ids("cloudtrail", fixture("cloudtrail", "s3_delivery_records"), tag), indent=2))
    code, output = await run_cli(svc, "replay", "cloudtrail", str(path))
    assert code == 0, output
    assert len(await svc.events(tag, 2)) == 2


async def test_binding_cache_spans_paths(svc: Running, owner_pool: asyncpg.Pool) -> None:
    tag = new_tag()
    create, patch, delete = (tag_ids("k8s", fixture("k8s", n), tag) for n in ("crb_create", "crb_patch", "crb_delete"))
    assert (await svc.post("k8s", json.dumps(create).encode())).status == 200
    await svc.events(tag, 3)
    cached = await owner_pool.fetchval(
        "SELECT state FROM connector_state_cache WHERE source = 'k8s' AND object_key = $1",
        f"rbac:{svc.settings.k8s_cluster}/clusterrolebindings/-/ops-admins",
    )
    assert cached is not None
    assert "oscar@acme.example" in cached
    await produce_raw(svc, "k8s", json.dumps(patch).encode())
    await svc.events(tag, 5)
    assert (await svc.post("k8s", json.dumps(delete).encode())).status == 200
    events = await svc.events(tag, 8)
    revokes = sorted(str(e.key) for e in events if isinstance(e, GrantEvent) and e.action.value == "revoke")
    assert (
        revokes
        == sorted(
            [
                "k8s:serviceaccount:argocd/argocd-application-controller|k8s:clusterrole:cluster-admin|bound",  # by the patch
                "k8s:group:sre-oncall|k8s:clusterrole:cluster-admin|bound",
                "k8s:serviceaccount:ci/deployer|k8s:clusterrole:cluster-admin|bound",
                "k8s:user:oscar@acme.example|k8s:clusterrole:cluster-admin|bound",
            ]
        )
    )


async def test_malformed_raw_record_is_dead_lettered_with_its_offset(svc: Running) -> None:
    tag = new_tag()
    raw = f"not json at all {tag}".encode()
    await produce_raw(svc, "github", raw)
    letters = await read_topic(
        svc.kafka, f"{svc.grants_topic}.dlq", until=lambda rs: any(r.value == raw for r in rs), timeout_s=20
    )
    (letter,) = [r for r in letters if r.value == raw]
    assert header_value(letter.headers, "dlq_source") == f"kafka:{svc.settings.raw_topic('github')}"
    assert header_value(letter.headers, "dlq_source_offset") is not None
    assert "not JSON" in (header_value(letter.headers, "dlq_reason") or "")
    # The consumer went on: a good record after the bad one is still ingested.
    good = json.dumps(tag_ids("github", fixture("github", "repo_add_member"), tag)).encode()
    await produce_raw(svc, "github", good)
    assert len(await svc.events(tag, 1)) == 1


async def test_processed_records_are_remembered(svc: Running, owner_pool: asyncpg.Pool) -> None:
    tag = new_tag()
    body = tag_ids("vault", fixture("vault", "lease_revoke"), tag)
    assert (await svc.post("vault", json.dumps(body).encode())).status == 200
    request_id = body[1]["request"]["id"]
    key = await owner_pool.fetchval(
        "SELECT record_key FROM connector_processed_records WHERE source = 'vault' AND record_key LIKE $1",
        f"%|{request_id}",
    )
    assert key is not None
    assert key.startswith("update sys/leases/revoke/")


@pytest.mark.parametrize(
    ("source", "name", "count"),
    [
        ("okta", "user_deactivate", 1),
        ("cloudtrail", "put_role_policy", 1),
        ("entra", "pim_activation", 1),
        ("github", "pat_access_granted", 1),
        ("k8s", "aks_wrapped_log_string", 1),
        ("vault", "identity_group_write", 2),
    ],
)
async def test_replay_then_hook_then_raw_topic_same_effect_once(
    svc: Running, tmp_path: Path, source: str, name: str, count: int
) -> None:
    tag = new_tag()
    body = tag_ids(source, fixture(source, name), tag)
    path = tmp_path / f"{source}.jsonl"
    path.write_text(json.dumps(body) + "\n")
    summary = await replay_file(svc.service.ingestion.ingest, source, path)
    assert summary.events_published == count
    assert len(await svc.events(tag, count)) == count
    raw = json.dumps(body).encode()
    assert (await (await svc.post(source, raw)).json())["published_events"] == 0
    before = svc.duplicates_seen(source)
    await produce_raw(svc, source, raw)
    await svc.wait_for_raw_duplicate(source, before)
    assert len(await svc.events_after(tag, seconds=0.5)) == count
