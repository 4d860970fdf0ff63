"""Hook -> iam.grants: each source, durable before 2xx, keyed by entitlement key, deduplicated, DLQ on bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from closeloop.contracts.codec import header_value
from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged
from closeloop.settings import DatabaseSettings, KafkaSettings
from tests.integration.connectors.harness import Running, auth_for, new_tag, running_service, tag_ids
from tests.support.kafka_helpers import read_topic
from tests.unit.connectors.support import fixture

pytestmark = pytest.mark.integration

CASES = [
    (
        "okta",
        "event_hook_delivery",
        {
            "okta:user:alice.ng@acme.example|okta:group:00g1engadmins000x697|member",
            "okta:user:alice.ng@acme.example|okta:adminrole:ORG_ADMIN|assigned",
            "okta:user:alice.ng@acme.example|okta:adminrole:APP_ADMIN|assigned",
        },
    ),
    (
        "cloudtrail",
        "eventbridge_attach_role_policy",
        {
            "aws:role:arn:aws:iam::111122223333:role/reporting|aws:policy:arn:aws:iam::aws:policy/AWSBillingReadOnlyAccess|attached",
        },
    ),
    (
        "entra",
        "add_app_role_to_sp",
        {
            "entra:serviceprincipal:7d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8|entra:app:62cb17e7-d25e-4356-ad51-a861585f8634|user.read.all",
        },
    ),
    (
        "github",
        "org_update_member_to_admin",
        {
            "github:user:lena-dev|github:org:acme-corp|admin",
            "github:user:lena-dev|github:org:acme-corp|member",
        },
    ),
    ("k8s", "webhook_eventlist", {"k8s:group:qa-team|k8s:clusterrole:view|bound"}),
    ("vault", "policy_write", {"vault:policy:deployers|vault:policy:deployers|defined"}),
]


@pytest.fixture(scope="module")
async def svc(kafka_settings: KafkaSettings, database_settings: DatabaseSettings) -> AsyncIterator[Running]:
    async with running_service(kafka_settings, database_settings) as running:
        yield running


@pytest.mark.parametrize(("source", "name", "keys"), CASES, ids=[c[0] for c in CASES])
async def test_hook_publishes_grant_events_keyed_by_entitlement(
    svc: Running, source: str, name: str, keys: set[str]
) -> None:
    tag = new_tag()
    body = json.dumps(tag_ids(source, fixture(source, name), tag)).encode()
    response = await svc.post(source, body)
    assert response.status == 200
    assert (await response.json())["published_events"] == len(keys)
    # 2xx came after the broker acknowledged: the events are readable right away.
    records = await read_topic(
        svc.kafka,
        svc.grants_topic,
        until=lambda rs: sum(tag.encode() in r.value for r in rs) >= len(keys),
        timeout_s=10,
    )
    mine = [r for r in records if tag.encode() in r.value]
    assert {r.key.decode() for r in mine} == keys
    for record in mine:
        assert header_value(record.headers, "ce_type") == "iam.grant.changed"
        assert header_value(record.headers, "ce_subject") == record.key.decode()


async def test_the_same_delivery_twice_publishes_once(svc: Running) -> None:
    tag = new_tag()
    body = json.dumps(tag_ids("github", fixture("github", "org_remove_member"), tag)).encode()
    first = await svc.post("github", body)
    second = await svc.post("github", body)
    assert (await first.json())["published_events"] == 2
    assert (await second.json())["duplicates"] == 1
    assert len(await svc.events_after(tag, seconds=1.5)) == 2


async def test_concurrent_deliveries_of_one_record_publish_once(svc: Running) -> None:
    tag = new_tag()
    body = json.dumps(tag_ids("okta", fixture("okta", "user_privilege_grant"), tag)).encode()
    responses = await asyncio.gather(*(svc.post("okta", body) for _ in range(4)))
    assert all(r.status == 200 for r in responses)
    published = [(await r.json())["published_events"] for r in responses]
    assert sorted(published) == [0, 0, 0, 2]
    events = await svc.events_after(tag, seconds=1.5)
    assert len(events) == 2


async def test_status_events_are_keyed_by_principal(svc: Running) -> None:
    tag = new_tag()
    body = json.dumps(tag_ids("entra", fixture("entra", "disable_account"), tag)).encode()
    assert (await svc.post("entra", body)).status == 200
    (event,) = await svc.events(tag, 1)
    assert isinstance(event, PrincipalStatusChanged)
    records = await read_topic(svc.kafka, svc.grants_topic, until=lambda rs: any(tag.encode() in r.value for r in rs))
    (record,) = [r for r in records if tag.encode() in r.value]
    assert record.key == b"entra:user:ivan.petrov@acme.example"


async def test_malformed_body_is_422_and_dead_lettered_with_its_reason(svc: Running) -> None:
    tag = new_tag()
    raw = f'{{"unterminated": "{tag}"'.encode()
    response = await svc.post("vault", raw)
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    # Replayable where the same payload could be published: the vault raw topic's dead-letter topic.
    letter = await svc.dead_letters("vault", raw)
    assert "not JSON" in (header_value(letter.headers, "dlq_reason") or "")
    assert header_value(letter.headers, "dlq_kind") == "malformed"
    assert header_value(letter.headers, "dlq_source") == "hook:/v1/hooks/vault"
    assert header_value(letter.headers, "dlq_source_topic") == svc.settings.raw_topic("vault")


async def test_okta_verification_and_authentication_on_the_real_server(svc: Running) -> None:
    verified = await svc.http.get(
        f"{svc.base_url}/v1/hooks/okta", headers={**auth_for("okta"), "X-Okta-Verification-Challenge": "abc"}
    )
    assert await verified.json() == {"verification": "abc"}
    refused = await svc.post("github", b"{}", headers={"Authorization": "Bearer nope"})
    assert refused.status == 401


async def test_body_over_one_mebibyte_is_413(svc: Running) -> None:
    response = await svc.post("cloudtrail", b"[" + b" " * (1024 * 1024 + 10) + b"]")
    assert response.status == 413


async def test_ops_routes_are_on_the_same_app(svc: Running) -> None:
    health = await svc.http.get(f"{svc.base_url}/healthz")
    ready = await svc.http.get(f"{svc.base_url}/readyz")
    metrics = await svc.http.get(f"{svc.base_url}/metrics")
    assert health.status == 200
    assert ready.status == 200, await ready.text()
    assert "closeloop_connector_events_total" in await metrics.text()


async def test_grant_event_round_trips_with_its_facts(svc: Running) -> None:
    tag = new_tag()
    body = json.dumps(tag_ids("cloudtrail", fixture("cloudtrail", "create_access_key"), tag)).encode()
    assert (await svc.post("cloudtrail", body)).status == 200
    (event,) = await svc.events(tag, 1)
    assert isinstance(event, GrantEvent)
    assert event.credential is not None
    assert event.credential.credential_id == "AKIA6ODU5DHTNEWKEY01"
    assert event.actor is not None
    assert event.actor.id.endswith("user/carol.admin@acme.example")
