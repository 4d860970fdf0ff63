"""A webhook the mapping cannot read is dead-lettered where a raw record of it would go, and once the site's
mapping names the field, `closeloop dlq replay` re-drives it: the ticket event appears, exactly once."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import dlq
from tests.integration.request_intake.conftest import start_intake
from tests.integration.request_intake.helpers import encode, header, post_standard, read_all, ticket_events
from tests.support.cli import closeloop
from tests.support.kafka_helpers import read_topic, unique
from tests.unit.request_intake.fixtures import load

pytestmark = pytest.mark.integration

GROUP = "okta:group:00g1dbadmins"


async def test_unmappable_webhook_is_replayed_from_the_raw_topics_dlq_after_the_mapping_fix(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, tmp_path: Path
) -> None:
    topics = {
        "tickets_topic": unique("it.replay.tickets"),
        "servicenow_raw_topic": unique("it.replay.raw.servicenow"),
        "jira_raw_topic": unique("it.replay.raw.jira"),
        "generic_raw_topic": unique("it.replay.raw.generic"),
        "group_id": unique("it-replay"),
    }
    raw_topic = topics["servicenow_raw_topic"]
    # This site's catalog item names the group in its own variable, which the default mapping does not read.
    sys_id = uuid.uuid4().hex
    item = load("servicenow", "ritm_missing_resource.json")
    item["sys_id"] = sys_id
    item["variables"]["u_okta_group"] = GROUP
    body = encode(item)

    before = await start_intake(kafka_settings, database_settings, **topics)
    try:
        async with aiohttp.ClientSession() as http:
            reply = await post_standard(http, before, "servicenow", body)
        assert reply.status == 422
    finally:
        await before.stop()
    [letter] = [r for r in await read_all(kafka_settings, dlq(raw_topic)) if r.value == body]
    assert header(letter, "dlq_kind") == "malformed"
    assert header(letter, "dlq_source") == "webhook:servicenow"

    listed = json.loads((await closeloop("dlq", "list", raw_topic, "--json")).stdout)
    assert [(e["kind"], e["replay_onto"], e["source"]) for e in listed] == [
        ("malformed", raw_topic, "webhook:servicenow")
    ]
    assert "variables.access_resource: missing" in listed[0]["reason"]

    # The fix: the site mapping reads the resource from the catalog's variable too.
    fixed = tmp_path / "mapping.yaml"
    fixed.write_text(
        "servicenow:\n  fields:\n    access_resource: [variables.access_resource, variables.u_okta_group]\n"
    )
    after = await start_intake(kafka_settings, database_settings, mapping_file=fixed, **topics)
    try:
        await closeloop("dlq", "replay", raw_topic, "--reason", "access_resource")
        records = await read_topic(
            kafka_settings,
            topics["tickets_topic"],
            until=lambda rs: any(sys_id.encode() in (r.value or b"") for r in rs),
        )
        [event] = ticket_events(records, sys_id)
        assert event.entitlement is not None
        assert event.entitlement.resource == GROUP

        # Replayed again: the intake recognises the same revision, nothing new is published.
        await closeloop("dlq", "replay", raw_topic)
        await _until_counted(after.intake.metrics.registry, raw_topic)
    finally:
        await after.stop()
    assert len(ticket_events(await read_all(kafka_settings, topics["tickets_topic"]), sys_id)) == 1


async def _until_counted(registry: CollectorRegistry, raw_topic: str, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    labels = {"service": "request-intake", "input": raw_topic}
    while not registry.get_sample_value("closeloop_duplicates_total", labels):
        assert asyncio.get_running_loop().time() < deadline, "the second replay was not seen as a duplicate"
        await asyncio.sleep(0.1)
