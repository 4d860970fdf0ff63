"""Raw vendor records on Kafka: the same normalization, handler and dead-letter topic as the webhooks."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from closeloop.contracts.tickets import TicketTransition
from closeloop.settings import KafkaSettings
from closeloop.topics import dlq
from request_intake.normalizers import normalize
from request_intake.observation import TicketObservation
from tests.integration.request_intake.conftest import RunningIntake
from tests.integration.request_intake.helpers import (
    encode,
    header,
    post_jira,
    post_standard,
    produce_raw,
    read_all,
    ticket_events,
)
from tests.support.kafka_helpers import read_topic
from tests.unit.request_intake.fixtures import jira_site_mapping, load

pytestmark = pytest.mark.integration

T = TicketTransition


def records_with(ticket_id: str, count: int) -> Any:
    return lambda records: sum(1 for r in records if r.value and ticket_id.encode() in r.value) >= count


async def test_raw_servicenow_records_have_the_same_effect_as_the_webhook(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    sys_id = uuid.uuid4().hex
    approved, closed = (load("servicenow", name) for name in ("ritm_approved.json", "ritm_closed_complete.json"))
    approved["sys_id"] = closed["sys_id"] = sys_id
    await produce_raw(kafka_settings, running.settings.servicenow_raw_topic, [encode(approved), encode(closed)])
    await read_topic(kafka_settings, running.tickets, until=records_with(sys_id, 2))

    # The same records by webhook afterwards: accepted, nothing new (the older one is now stale).
    for record, result in ((approved, "stale"), (closed, "duplicate")):
        reply = await post_standard(http, running, "servicenow", encode(record))
        assert reply.status == 202
        assert reply.body["results"][0]["result"] == result

    events = ticket_events(await read_all(kafka_settings, running.tickets), sys_id)
    assert [e.transition for e in events] == [T.APPROVED, T.CLOSED_COMPLETE]
    assert events[1].previous_state == "state=1 approval=approved stage=fulfillment"


async def test_raw_jira_record_then_the_same_by_webhook(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    issue_id = str(uuid.uuid4().int % 10**9)
    payload = load("jira", "cloud_transition_done.json")
    payload["issue"]["id"] = issue_id
    await produce_raw(kafka_settings, running.settings.jira_raw_topic, [encode(payload)])
    await read_topic(kafka_settings, running.tickets, until=records_with(issue_id, 1))
    reply = await post_jira(http, running, encode(payload))
    assert reply.status == 202
    assert reply.body["results"][0]["result"] == "duplicate"
    [event] = ticket_events(await read_all(kafka_settings, running.tickets), issue_id)
    assert (event.transition, event.version) == (T.CLOSED_COMPLETE, 20009)
    # Same deterministic event id as the normalizer computes for that revision.
    [expected] = normalize("jira", payload, jira_site_mapping())
    assert isinstance(expected, TicketObservation)
    assert event.event_id == expected.draft.event_id


async def test_raw_records_that_cannot_be_mapped_go_to_the_same_dead_letter_topic(
    running: RunningIntake, kafka_settings: KafkaSettings
) -> None:
    marker = uuid.uuid4().hex
    bad_json = f'{{"sys_id": "{marker}"'.encode()
    unmappable = load("servicenow", "ritm_missing_resource.json")
    unmappable["sys_id"] = marker
    good = load("servicenow", "ritm_requested.json")
    good["sys_id"] = marker[::-1]
    raw_topic = running.settings.servicenow_raw_topic
    await produce_raw(kafka_settings, raw_topic, [bad_json, encode(unmappable), encode(good)])

    letters = await read_topic(kafka_settings, running.dead_letters, until=records_with(marker, 2))
    mine = [r for r in letters if r.value and marker.encode() in r.value]
    assert [r.value for r in mine] == [bad_json, encode(unmappable)]
    assert [header(r, "dlq_source_topic") for r in mine] == [raw_topic, raw_topic]
    assert [header(r, "dlq_kind") for r in mine] == ["malformed", "malformed"]
    assert (header(mine[0], "dlq_reason") or "").startswith("invalid_json: <body>")
    assert header(mine[1], "dlq_reason") == (
        "unmappable: variables.access_resource: missing; required for access_request tickets"
    )
    assert header(mine[1], "dlq_source_offset") is not None
    # Bad input never stops the consumer: the record after them is processed.
    await read_topic(kafka_settings, running.tickets, until=records_with(marker[::-1], 1))
    assert not ticket_events(await read_all(kafka_settings, running.tickets), marker)


@pytest.mark.parametrize("system", ["jira", "generic"])
async def test_each_systems_webhook_letters_wait_on_its_own_raw_topics_dlq(
    running: RunningIntake, http: aiohttp.ClientSession, kafka_settings: KafkaSettings, system: str
) -> None:
    marker = uuid.uuid4().hex
    body = f'{{"marker": "{marker}", '.encode()
    reply = await (post_jira(http, running, body) if system == "jira" else post_standard(http, running, system, body))
    assert reply.status == 422
    raw_topic = running.settings.raw_topic(system)
    letters = await read_topic(kafka_settings, dlq(raw_topic), until=records_with(marker, 1))
    [letter] = [r for r in letters if r.value == body]
    assert (header(letter, "dlq_source"), header(letter, "dlq_source_topic")) == (f"webhook:{system}", raw_topic)
    assert header(letter, "dlq_kind") == "malformed"


async def test_generic_raw_records_are_consumed_like_generic_webhooks(
    running: RunningIntake, kafka_settings: KafkaSettings
) -> None:
    payload = load("generic", "ticket_approved.json")
    ticket_id = uuid.uuid4().hex
    payload["data"]["ticket_id"] = ticket_id
    await produce_raw(kafka_settings, running.settings.generic_raw_topic, [encode(payload)])
    await read_topic(kafka_settings, running.tickets, until=records_with(ticket_id, 1))
    [event] = ticket_events(await read_all(kafka_settings, running.tickets), ticket_id)
    assert (event.system, event.transition) == ("generic", T.APPROVED)
