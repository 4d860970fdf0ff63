"""Regression tests for the crash classes found by fuzzing the ITSM webhooks: each is a 422 problem+json
naming the field, with the delivery dead-lettered, never a 500 (which made the sender retry forever)."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from closeloop.metrics import ServiceMetrics
from request_intake.dates import add_calendar
from request_intake.http_entry import WebhookEndpoint, build_app
from request_intake.signatures import Verified
from tests.fuzz.targets import IntakeTarget
from tests.unit.request_intake.fixtures import load

LIMIT = 1 << 20


class AcceptAll:
    """Authentication is tested elsewhere; here every delivery is authentic, with a fresh id."""

    def __init__(self) -> None:
        self.count = 0

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Verified:
        self.count += 1
        return Verified(delivery_id=f"msg_{self.count}", timestamp=datetime.now(UTC))


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[IntakeTarget, TestClient[Any, Any]]]:
    target = IntakeTarget("generic")
    metrics = ServiceMetrics("test-intake")
    endpoint = WebhookEndpoint(target.receive, {"generic": AcceptAll()}, metrics, max_body_bytes=LIMIT)
    client = TestClient(TestServer(build_app(endpoint, LIMIT)))
    await client.start_server()
    try:
        yield target, client
    finally:
        await client.close()


def generic(**data: Any) -> bytes:
    event = copy.deepcopy(load("generic", "ticket_approved.json"))
    event["data"].update(data)
    return json.dumps(event, ensure_ascii=True).encode()


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b'{"data": ' + b"9" * 5000 + b"}", "<body>", "integer with more than"),
        (b"[" * 1000 + b"]" * 1000, "<body>", "nests deeper"),
        (b'{"specversion": 1e400}', "<body>", "out of range"),
        (generic(requested_for="\ud800@example.com"), "<body>", "lone surrogate"),
        (generic(access_resource="k8s:clusterrole:view\x00"), "<body>", "NUL"),
        (generic(access_resource="k8s:clusterrole:view|okta:group:admins"), "data.access_resource", "'|'"),
        (generic(access_resource="k8s:clusterrole:" + "v" * 900), "data.access_resource", "longer than"),
        (generic(access_resource="k8s:clusterrole:view\nx"), "data.access_resource", "control characters"),
        (generic(requested_for="a" * 700), "data.requested_for", "longer than"),
        (generic(updated_at="2026-01-08T14:05:00Z" + "0" * 5000), "data.updated_at", "datetime"),
        (generic(access_duration="P100000000D"), "data.access_duration", "longer than"),
        (generic(version=2**63), "data.version", "between"),
    ],
    ids=[
        "huge-int",
        "deep",
        "1e400",
        "surrogate",
        "nul",
        "pipe",
        "long-resource",
        "control-char",
        "long-requested-for",
        "long-date",
        "huge-duration",
        "bigint-version",
    ],
)
async def test_hostile_deliveries_are_422_named_and_dead_lettered(
    webhook: tuple[IntakeTarget, TestClient[Any, Any]], body: bytes, field: str, reason: str
) -> None:
    target, client = webhook
    response = await client.post("/v1/webhooks/generic", data=body)
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["field"] == field
    assert reason in problem["detail"]
    assert [letter.value for letter in target.dead_letters] == [body]
    assert not target.dead_letters[0].reason.split(": ", 1)[-1].startswith("unexpected")
    assert target.published == []


async def test_a_sound_delivery_is_still_accepted(webhook: tuple[IntakeTarget, TestClient[Any, Any]]) -> None:
    target, client = webhook
    response = await client.post(
        "/v1/webhooks/generic", data=generic(access_resource="k8s:clusterrole:Payments Admins")
    )
    assert response.status == 202
    assert len(target.published) == 1


def test_calendar_arithmetic_beyond_the_calendar_is_an_error_not_a_loop() -> None:
    # `P10000Y` used to loop forever: the month-end clamp retried day - 1 on a year datetime cannot hold.
    start = datetime(2026, 1, 31, tzinfo=UTC)
    with pytest.raises(ValueError, match="out of range"):
        add_calendar(start, years=10000)
    assert add_calendar(start, months=1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_calendar(datetime(2024, 2, 29, tzinfo=UTC), years=1) == datetime(2025, 2, 28, tzinfo=UTC)


async def test_a_duration_in_years_beyond_the_calendar_is_422(
    webhook: tuple[IntakeTarget, TestClient[Any, Any]],
) -> None:
    _, client = webhook
    response = await client.post("/v1/webhooks/generic", data=generic(access_duration="P10000Y"))
    assert response.status == 422
    assert (await response.json())["field"] == "data.access_duration"


async def test_a_sound_record_in_a_servicenow_page_is_published_next_to_a_bad_one() -> None:
    target = IntakeTarget("servicenow")
    metrics = ServiceMetrics("test-intake")
    endpoint = WebhookEndpoint(target.receive, {"servicenow": AcceptAll()}, metrics, max_body_bytes=LIMIT)
    client = TestClient(TestServer(build_app(endpoint, LIMIT)))
    await client.start_server()
    page = load("servicenow", "table_api_page.json")
    page["result"][1]["sys_updated_on"] = "2026-01-08 14:05:00" + "0" * 5000  # a 5,000-character date
    body = json.dumps(page).encode()
    try:
        response = await client.post("/v1/webhooks/servicenow", data=body)
        results = (await response.json())["results"]
    finally:
        await client.close()
    assert response.status == 202
    assert [r["result"] for r in results].count("dead_lettered") == 1
    assert len(target.published) == len(page["result"]) - 1
    (letter,) = target.dead_letters
    assert letter.value == body
    assert "result[1].sys_updated_on" in letter.reason
