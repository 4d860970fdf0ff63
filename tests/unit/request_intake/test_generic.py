"""Generic CloudEvents 1.0 tickets: envelope and strict data validation, status mapping, scoping by source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from closeloop.contracts.tickets import ApprovalDecision, TicketTransition
from request_intake.mapping import load_mapping
from request_intake.normalizers import normalize
from request_intake.observation import TicketObservation
from request_intake.problems import Skipped, Unmappable
from tests.unit.request_intake.fixtures import default_mapping, load


def observe(payload: Any, mapping: Any = None) -> TicketObservation:
    [result] = normalize("generic", payload, mapping or default_mapping())
    assert isinstance(result, TicketObservation), result
    return result


def problem(payload: Any) -> Unmappable:
    with pytest.raises(Unmappable) as caught:
        normalize("generic", payload, default_mapping())
    return caught.value


def test_generic_ticket() -> None:
    obs = observe(load("generic", "ticket_approved.json"))
    event = obs.draft
    assert obs.phase is TicketTransition.APPROVED
    assert obs.state_key == "https://itsm.acme.example/freshservice#1042"
    assert (event.system, event.ticket_id, event.ticket_number, event.table) == (
        "generic",
        "1042",
        "SR-1042",
        "service_request",
    )
    assert event.source == "https://itsm.acme.example/freshservice"
    assert event.occurred_at == datetime(2026, 1, 8, 14, 5, tzinfo=UTC)
    assert str(event.entitlement) == "k8s:user:ivan.dev@example.com|k8s:clusterrole:view|bound"
    assert event.requested_duration == timedelta(days=14)
    assert event.approvers[0].decision is ApprovalDecision.APPROVED
    assert event.version == 3


def test_state_mapped_through_the_generic_states() -> None:
    payload = load("generic", "ticket_approved.json")
    del payload["data"]["status"]
    payload["data"]["state"] = "Awaiting Fulfilment"
    mapping = load_mapping(overrides={"generic": {"states": {"Awaiting Fulfilment": "in_fulfilment"}}})
    assert observe(payload, mapping).phase is TicketTransition.IN_FULFILMENT


def test_canonical_state_names_need_no_mapping() -> None:
    payload = load("generic", "ticket_approved.json")
    del payload["data"]["status"]
    payload["data"]["state"] = "Closed Complete"
    assert observe(payload).phase is TicketTransition.CLOSED_COMPLETE


def test_without_version_the_cloudevent_id_makes_the_revision() -> None:
    payload = load("generic", "ticket_approved.json")
    del payload["data"]["version"]
    first = observe(payload).draft.event_id
    payload["id"] = "another-delivery"
    assert observe(payload).draft.event_id != first


def test_ticket_without_access_fields_is_skipped() -> None:
    payload = load("generic", "ticket_approved.json")
    for key in ("request_kind", "requested_for", "access_system", "access_resource"):
        del payload["data"][key]
    [result] = normalize("generic", payload, default_mapping())
    assert isinstance(result, Skipped)
    assert result.why == "not_access_related"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.update(specversion="0.3"), "specversion"),
        (lambda p: p.pop("source"), "source"),
        (lambda p: p.update(data="text"), "data"),
        (lambda p: p.update(time="2026-01-08T14:05:00"), "time"),
        (lambda p: p["data"].update(surprise=1), "data.surprise"),
        (lambda p: p["data"].pop("ticket_id"), "data.ticket_id"),
        (lambda p: p["data"].update(status="teleported"), "data.status"),
        (lambda p: (p["data"].pop("status"), p["data"].update(state="Weird")), "data.state"),
        (lambda p: p["data"].update(access_resource="entra:group:abc"), "data.access_resource"),
        (lambda p: p["data"].update(approvers=[{"approver": "x", "decision": "maybe"}]), "data.approvers.0.decision"),
        (lambda p: (p.pop("time"), p["data"].pop("updated_at")), "time"),
    ],
)
def test_invalid_events_name_the_field(change: Any, field: str) -> None:
    payload = load("generic", "ticket_approved.json")
    change(payload)
    assert problem(payload).field == field


def test_not_an_object() -> None:
    assert problem([1]).field == "<body>"
