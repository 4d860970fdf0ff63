"""HTTP hooks: authentication, Okta verification, body limit, problem+json, dead letters, summaries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from closeloop.ops import Readiness, add_ops_routes
from connectors.http_entry import HookRoutes, build_app, secret_matches
from tests.unit.connectors.memory import MemoryIngestion, memory_ingestion
from tests.unit.connectors.support import fixture, fixture_bytes

OKTA_SECRET = "okta-shared-secret-value"
HOOK_SECRET = "hook-bearer-secret-value"
LIMIT = 64 * 1024
BEARER = {"Authorization": f"Bearer {HOOK_SECRET}"}


async def client_for(mem: MemoryIngestion, **overrides: Any) -> TestClient[Any, Any]:
    options: dict[str, Any] = {
        "sources": ["okta", "entra", "cloudtrail", "github", "k8s", "vault"],
        "okta_secret": SecretStr(OKTA_SECRET),
        "hook_secret": SecretStr(HOOK_SECRET),
        "max_body_bytes": LIMIT,
        **overrides,
    }
    app = build_app(HookRoutes(mem.ingest, **options), LIMIT)
    add_ops_routes(app, mem.metrics, Readiness())
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def mem_client() -> AsyncIterator[tuple[MemoryIngestion, TestClient[Any, Any]]]:
    mem = memory_ingestion()
    client = await client_for(mem)
    try:
        yield mem, client
    finally:
        await client.close()


async def test_okta_verification_challenge(mem_client: tuple[MemoryIngestion, TestClient[Any, Any]]) -> None:
    _, client = mem_client
    response = await client.get(
        "/v1/hooks/okta", headers={"Authorization": OKTA_SECRET, "X-Okta-Verification-Challenge": "ch4ll3nge"}
    )
    assert response.status == 200
    assert await response.json() == {"verification": "ch4ll3nge"}
    refused = await client.get("/v1/hooks/okta", headers={"X-Okta-Verification-Challenge": "x"})
    assert refused.status == 401


async def test_okta_hook_with_its_secret_publishes(mem_client: tuple[MemoryIngestion, TestClient[Any, Any]]) -> None:
    mem, client = mem_client
    response = await client.post(
        "/v1/hooks/okta", data=fixture_bytes("okta", "event_hook_delivery"), headers={"Authorization": OKTA_SECRET}
    )
    assert response.status == 200
    body = await response.json()
    assert body["published_events"] == 3
    assert body["skipped"] == 1
    assert len(mem.sink.events) == 3


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": OKTA_SECRET}, {"Authorization": "Basic " + HOOK_SECRET}],
)
async def test_other_hooks_need_the_bearer_secret(
    mem_client: tuple[MemoryIngestion, TestClient[Any, Any]], headers: dict[str, str]
) -> None:
    mem, client = mem_client
    response = await client.post("/v1/hooks/github", data=fixture_bytes("github", "org_add_member"), headers=headers)
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert mem.sink.events == []


async def test_okta_hook_refuses_the_other_secret(mem_client: tuple[MemoryIngestion, TestClient[Any, Any]]) -> None:
    _, client = mem_client
    response = await client.post("/v1/hooks/okta", data=b"[]", headers=BEARER)
    assert response.status == 401


async def test_hook_without_configured_secret_refuses_everything() -> None:
    mem = memory_ingestion()
    client = await client_for(mem, hook_secret=None)
    try:
        response = await client.post("/v1/hooks/vault", data=b"[]", headers={"Authorization": "Bearer "})
        assert response.status == 503
        assert (await response.json())["title"] == "Hook not configured"
    finally:
        await client.close()


async def test_kubernetes_webhook_eventlist(mem_client: tuple[MemoryIngestion, TestClient[Any, Any]]) -> None:
    _, client = mem_client
    response = await client.post("/v1/hooks/k8s", data=fixture_bytes("k8s", "webhook_eventlist"), headers=BEARER)
    assert response.status == 200
    assert (await response.json())["published_events"] == 1


async def test_eventbridge_envelope(mem_client: tuple[MemoryIngestion, TestClient[Any, Any]]) -> None:
    mem, client = mem_client
    response = await client.post(
        "/v1/hooks/cloudtrail", data=fixture_bytes("cloudtrail", "eventbridge_attach_role_policy"), headers=BEARER
    )
    assert response.status == 200
    assert len(mem.sink.events) == 1


async def test_body_over_the_limit_is_413(mem_client: tuple[MemoryIngestion, TestClient[Any, Any]]) -> None:
    mem, client = mem_client
    big = json.dumps([fixture("github", "org_add_member")] * 200).encode()
    assert len(big) > LIMIT
    response = await client.post("/v1/hooks/github", data=big, headers=BEARER)
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    assert mem.sink.events == []


async def test_chunked_body_over_the_limit_is_413(mem_client: tuple[MemoryIngestion, TestClient[Any, Any]]) -> None:
    _, client = mem_client

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    response = await client.post("/v1/hooks/github", data=chunks(), headers=BEARER)
    assert response.status == 413


async def test_malformed_body_is_422_problem_and_dead_lettered(
    mem_client: tuple[MemoryIngestion, TestClient[Any, Any]],
) -> None:
    mem, client = mem_client
    response = await client.post("/v1/hooks/vault", data=b"{definitely not json", headers=BEARER)
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["status"] == 422
    assert "not JSON" in problem["detail"]
    assert mem.sink.rejected[0].value == b"{definitely not json"
    assert mem.sink.rejected[0].origin == "hook:/v1/hooks/vault"


async def test_valid_json_that_is_not_a_record_is_422(mem_client: tuple[MemoryIngestion, TestClient[Any, Any]]) -> None:
    mem, client = mem_client
    response = await client.post(
        "/v1/hooks/okta", data=fixture_bytes("okta", "target_null_group_add"), headers={"Authorization": OKTA_SECRET}
    )
    assert response.status == 422
    assert "target of type User" in (await response.json())["detail"]
    assert mem.sink.rejected[0].value == fixture_bytes("okta", "target_null_group_add")


async def test_partly_malformed_body_is_accepted_with_counts(
    mem_client: tuple[MemoryIngestion, TestClient[Any, Any]],
) -> None:
    mem, client = mem_client
    body = json.dumps([fixture("github", "org_add_member"), {"actor": "x"}]).encode()
    response = await client.post("/v1/hooks/github", data=body, headers=BEARER)
    assert response.status == 200
    assert (await response.json())["dead_lettered"] == 1
    assert len(mem.sink.events) == 1


async def test_unknown_source_and_method(mem_client: tuple[MemoryIngestion, TestClient[Any, Any]]) -> None:
    _, client = mem_client
    unknown = await client.post("/v1/hooks/ldap", data=b"{}", headers=BEARER)
    assert unknown.status == 404
    assert unknown.content_type == "application/problem+json"
    wrong_method = await client.put("/v1/hooks/github", data=b"{}", headers=BEARER)
    assert wrong_method.status == 405
    assert wrong_method.content_type == "application/problem+json"


async def test_disabled_source_is_404() -> None:
    mem = memory_ingestion()
    client = await client_for(mem, sources=["okta"])
    try:
        response = await client.post("/v1/hooks/github", data=b"{}", headers=BEARER)
        assert response.status == 404
    finally:
        await client.close()


async def test_broker_outage_is_503_and_nothing_is_claimed(
    mem_client: tuple[MemoryIngestion, TestClient[Any, Any]],
) -> None:
    mem, client = mem_client

    class DownSink:
        async def publish(self, events: Any) -> None:
            raise KafkaConnectionError("no broker")

        async def reject(self, rejected: Any) -> None:
            raise KafkaConnectionError("no broker")

    mem.ingest._sink = DownSink()
    response = await client.post("/v1/hooks/github", data=fixture_bytes("github", "org_add_member"), headers=BEARER)
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert mem.ledger.processed == set()


async def test_ops_routes_share_the_app(mem_client: tuple[MemoryIngestion, TestClient[Any, Any]]) -> None:
    _, client = mem_client
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    metrics = await (await client.get("/metrics")).text()
    assert "closeloop_events_in" in metrics


def test_secret_comparison() -> None:
    secret = SecretStr("s3cret")
    assert secret_matches("s3cret", secret)
    assert secret_matches("Bearer s3cret", secret)
    assert secret_matches("bearer s3cret", secret)
    assert not secret_matches("s3cret ", secret)
    assert not secret_matches(None, secret)
    assert not secret_matches("s3cret", None)


async def test_unexpected_error_is_a_500_problem_without_details(
    mem_client: tuple[MemoryIngestion, TestClient[Any, Any]],
) -> None:
    mem, client = mem_client

    class BrokenSink:
        async def publish(self, events: Any) -> None:
            raise RuntimeError("a bug with internal detail")

        async def reject(self, rejected: Any) -> None:
            return None

    mem.ingest._sink = BrokenSink()
    response = await client.post("/v1/hooks/github", data=fixture_bytes("github", "org_add_member"), headers=BEARER)
    assert response.status == 500
    assert response.content_type == "application/problem+json"
    assert "internal detail" not in await response.text()
