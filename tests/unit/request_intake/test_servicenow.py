"""ServiceNow records -> observations: tables, state/approval/stage rules, both JSON forms, dates, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from closeloop.contracts.identity import IdentityKind
from closeloop.contracts.tickets import ApprovalDecision, TicketKind, TicketTransition
from request_intake.normalizers import normalize
from request_intake.normalizers.servicenow import normalize_servicenow
from request_intake.observation import TicketObservation
from request_intake.problems import Invalid, Skipped, Unmappable
from tests.unit.request_intake.fixtures import default_mapping, load

T = TicketTransition


def observe(payload: Any) -> TicketObservation:
    [result] = normalize("servicenow", payload, default_mapping())
    assert isinstance(result, TicketObservation), result
    return result


def unmappable(payload: Any) -> Unmappable:
    with pytest.raises(Unmappable) as caught:
        normalize("servicenow", payload, default_mapping())
    return caught.value


def test_requested_ritm_maps_every_default_variable() -> None:
    obs = observe(load("servicenow", "ritm_requested.json"))
    event = obs.draft
    assert obs.phase is T.REQUESTED
    assert obs.version == 2
    assert obs.state_key == "9d3a1b2c4f5e60718293a4b5c6d7e8f9"
    assert event.system == "servicenow"
    assert event.ticket_number == "RITM0010042"
    assert event.table == "sc_req_item"
    assert event.kind is TicketKind.ACCESS_REQUEST
    assert event.requested_for == "okta:user:alice.smith@example.com"
    assert event.requested_for_kind is IdentityKind.HUMAN
    assert event.access is not None
    assert (event.access.system, event.access.resource, event.access.privilege) == (
        "okta",
        "okta:group:00g1engadmins",
        "member",
    )
    assert str(event.entitlement) == "okta:user:alice.smith@example.com|okta:group:00g1engadmins|member"
    assert event.subject == str(event.entitlement)
    assert event.requested_duration == timedelta(days=30)
    assert event.owner == "bob.owner@example.com"
    assert event.justification == "On-call rotation for the platform team"
    assert event.requested_by == "alice.requester"
    assert event.actor == "system"
    assert event.occurred_at == datetime(2026, 1, 5, 9, 1, 40, tzinfo=UTC)
    # The instance is learnt from the reference links in the record.
    assert event.source == "servicenow://acme.service-now.com"
    assert event.ticket_url == "https://acme.service-now.com/sc_req_item.do?sys_id=9d3a1b2c4f5e60718293a4b5c6d7e8f9"
    assert event.closed_at is None
    assert obs.kafka_key() == str(event.entitlement).encode()


def test_approved_ritm_carries_its_approvers_with_times() -> None:
    event = observe(load("servicenow", "ritm_approved.json")).draft
    assert event.transition is T.APPROVED
    [approval] = event.approvers
    assert approval.approver == "carol.approver@example.com"
    assert approval.decision is ApprovalDecision.APPROVED
    assert approval.decided_at == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def test_closed_complete_ritm_is_dated_by_closed_at() -> None:
    obs = observe(load("servicenow", "ritm_closed_complete.json"))
    assert obs.phase is T.CLOSED_COMPLETE
    assert obs.version == 9
    assert obs.draft.closed_at == datetime(2026, 1, 6, 10, 0, tzinfo=UTC)


def test_closed_complete_with_stage_request_cancelled_is_a_cancellation() -> None:
    obs = observe(load("servicenow", "ritm_closed_complete_stage_cancelled.json"))
    assert obs.phase is T.CLOSED_CANCELLED
    assert obs.draft.closed_at is not None


def test_rejected_approval_wins_over_the_closed_state() -> None:
    obs = observe(load("servicenow", "ritm_rejected.json"))
    assert obs.phase is T.REJECTED
    assert obs.draft.approvers[0].decision is ApprovalDecision.REJECTED


@pytest.mark.parametrize(
    ("state", "approval", "stage", "expected"),
    [
        ("-5", "not requested", "", T.REQUESTED),
        ("1", "requested", "waiting_for_approval", T.REQUESTED),
        ("1", "approved", "fulfillment", T.APPROVED),
        ("1", "not_requested", "", T.REQUESTED),
        ("2", "approved", "fulfillment", T.IN_FULFILMENT),
        ("3", "approved", "complete", T.CLOSED_COMPLETE),
        ("3", "approved", "request_cancelled", T.CLOSED_CANCELLED),
        ("3", "approved", "Request Cancelled", T.CLOSED_CANCELLED),
        ("4", "approved", "", T.CLOSED_CANCELLED),
        ("7", "approved", "", T.CLOSED_CANCELLED),
        ("4", "rejected", "", T.REJECTED),
        ("1", "rejected", "", T.REJECTED),
    ],
)
def test_ritm_state_approval_and_stage_are_read_together(
    state: str, approval: str, stage: str, expected: TicketTransition
) -> None:
    record = load("servicenow", "ritm_requested.json")
    record.update({"state": state, "approval": approval, "stage": stage})
    assert observe(record).phase is expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [("-5", T.REQUESTED), ("-3", T.REQUESTED), ("-2", T.APPROVED), ("-1", T.IN_FULFILMENT), ("0", T.FULFILLED),
     ("3", T.CLOSED_COMPLETE), ("4", T.CLOSED_CANCELLED)],
)  # fmt: skip
def test_change_request_states(state: str, expected: TicketTransition) -> None:
    record = load("servicenow", "ritm_requested.json")
    record.update({"sys_class_name": "change_request", "number": "CHG0030200", "state": state, "approval": ""})
    record.pop("stage")
    obs = observe(record)
    assert obs.phase is expected
    assert obs.draft.table == "change_request"


def test_break_glass_incident_is_an_exception_window_tied_to_itself() -> None:
    event = observe(load("servicenow", "incident_break_glass.json")).draft
    assert event.kind is TicketKind.EXCEPTION
    assert event.transition is T.IN_FULFILMENT
    assert event.incident_ticket == "INC0020011"
    assert event.window_start == datetime(2026, 3, 1, 2, 10, tzinfo=UTC)
    assert event.window_end == datetime(2026, 3, 1, 6, 10, tzinfo=UTC)
    # The window's end bounds the exception when no end date was asked for.
    assert event.requested_until == event.window_end
    assert str(event.entitlement) == "github:user:gina.oncall@example.com|github:org:acme|admin"


def test_closed_incident_closes_the_exception() -> None:
    obs = observe(load("servicenow", "incident_break_glass_closed.json"))
    assert obs.phase is T.CLOSED_COMPLETE
    assert obs.draft.closed_at == datetime(2026, 3, 1, 5, 40, tzinfo=UTC)


def test_display_value_all_form_yields_the_same_event_as_the_plain_form() -> None:
    plain = observe(load("servicenow", "ritm_approved.json"))
    both = observe(load("servicenow", "ritm_approved_display_value_all.json"))
    assert both.draft == plain.draft
    assert (both.phase, both.version, both.vendor_state) == (plain.phase, plain.version, plain.vendor_state)


def test_flat_dot_walked_variables_and_an_aws_role_principal() -> None:
    obs = observe(load("servicenow", "ritm_nhi_aws_flat_variables.json"))
    event = obs.draft
    assert obs.phase is T.IN_FULFILMENT
    assert event.requested_for == "aws:role:arn:aws:iam::123456789012:role/ci-deployer"
    assert event.requested_for_kind is IdentityKind.SERVICE_ACCOUNT
    assert event.access is not None
    assert event.access.resource == "aws:policy:arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    assert event.access.privilege == "attached"  # the default privilege of an AWS managed policy
    assert event.kind is TicketKind.ACCESS_REQUEST  # "Access" through common.kind_aliases
    assert event.project == "payments-ci"
    # P1M from the request's opening on 31 January ends on 28 February.
    assert event.requested_duration == timedelta(days=28)
    # No reference link and no configured instance: no URL, a plain source.
    assert (event.ticket_url, event.source) == (None, "servicenow")


def test_configured_instance_url_builds_the_link() -> None:
    from request_intake.mapping import load_mapping

    mapping = load_mapping(overrides={"servicenow": {"instance_url": "https://acme.service-now.com/"}})
    [obs] = normalize("servicenow", load("servicenow", "ritm_nhi_aws_flat_variables.json"), mapping)
    assert isinstance(obs, TicketObservation)
    assert obs.draft.ticket_url == "https://acme.service-now.com/sc_req_item.do?sys_id=c0ffee00c0ffee00c0ffee00c0ffee01"


def test_instance_format_dates_even_in_value() -> None:
    event = observe(load("servicenow", "ritm_instance_format_dates.json")).draft
    assert event.occurred_at == datetime(2026, 1, 5, 9, 1, 40, tzinfo=UTC)
    assert event.requested_until == datetime(2026, 1, 31, tzinfo=UTC)
    assert event.requested_duration is None


def test_zone_less_dates_are_read_in_the_configured_zone() -> None:
    from request_intake.mapping import load_mapping

    mapping = load_mapping(overrides={"servicenow": {"timezone": "Europe/Berlin"}})
    [obs] = normalize("servicenow", load("servicenow", "ritm_requested.json"), mapping)
    assert isinstance(obs, TicketObservation)
    assert obs.draft.occurred_at == datetime(2026, 1, 5, 8, 1, 40, tzinfo=UTC)


def test_offboarding_needs_only_the_beneficiary() -> None:
    event = observe(load("servicenow", "ritm_offboarding.json")).draft
    assert event.kind is TicketKind.OFFBOARDING
    assert event.requested_for == "okta:user:henry.leaver@example.com"
    assert event.access is None
    assert event.entitlement is None
    assert observe(load("servicenow", "ritm_offboarding.json")).kafka_key() == (
        b"servicenow:0ff0b0a2d0ff0b0a2d0ff0b0a2d0ff0b"
    )


def test_offboarding_without_a_system_keeps_the_beneficiary_as_written() -> None:
    record = load("servicenow", "ritm_offboarding.json")
    record["variables"].pop("access_system")
    record["variables"]["requested_for"] = "Henry.Leaver@Example.com"
    assert observe(record).draft.requested_for == "henry.leaver@example.com"


def test_table_api_page_yields_one_observation_per_record_in_order() -> None:
    results = normalize("servicenow", load("servicenow", "table_api_page.json"), default_mapping())
    assert [r.phase for r in results if isinstance(r, TicketObservation)] == [T.REQUESTED, T.APPROVED]


def test_single_result_envelope() -> None:
    obs = observe({"result": load("servicenow", "ritm_approved.json")})
    assert obs.phase is T.APPROVED


def test_empty_page_is_a_skip() -> None:
    assert normalize("servicenow", {"result": []}, default_mapping()) == [
        Skipped("empty_batch", "the delivery holds no record")
    ]


def test_event_id_is_deterministic_per_revision() -> None:
    first = observe(load("servicenow", "ritm_approved.json")).draft.event_id
    again = observe(load("servicenow", "ritm_approved.json")).draft.event_id
    later = observe(load("servicenow", "ritm_closed_complete.json")).draft.event_id
    assert first == again != later


def test_without_sys_mod_count_the_update_time_and_state_make_the_revision() -> None:
    record = load("servicenow", "ritm_approved.json")
    del record["sys_mod_count"]
    obs = observe(record)
    assert obs.version is None
    assert obs.updated_at == datetime(2026, 1, 5, 9, 30, 5, tzinfo=UTC)
    assert (
        obs.draft.event_id == observe(load("servicenow", "ritm_approved.json") | {"sys_mod_count": ""}).draft.event_id
    )


# -- not access-related: skipped with a reason ------------------------------------------------------------


def test_change_request_without_access_variables_is_skipped() -> None:
    [skipped] = normalize("servicenow", load("servicenow", "change_request_not_access.json"), default_mapping())
    assert isinstance(skipped, Skipped)
    assert skipped.why == "not_access_related"
    assert skipped.ticket == "CHG0030100"


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ({"sys_class_name": "problem", "number": "PRB0000050", "sys_id": "04ce72c9c0a8016600b5b7f75ac67b5b"}, "unsupported_table"),
        ({"number": "TASK0000001", "sys_id": "04ce72c9c0a8016600b5b7f75ac67b5c"}, "unknown_table"),
    ],
)  # fmt: skip
def test_other_tables_are_skipped(record: dict[str, Any], why: str) -> None:
    [skipped] = normalize("servicenow", record, default_mapping())
    assert isinstance(skipped, Skipped)
    assert skipped.why == why


def test_table_found_from_the_number_prefix() -> None:
    record = load("servicenow", "ritm_requested.json")
    del record["sys_class_name"]
    assert observe(record).draft.table == "sc_req_item"


def test_catalog_item_configured_as_access_related() -> None:
    from request_intake.mapping import load_mapping

    record = load("servicenow", "ritm_requested.json")
    record["variables"] = {}
    mapping = load_mapping(
        overrides={"servicenow": {"catalog_items": {"0a1b2c3d4e5f60718293a4b5c6d7e801": "access_request"}}}
    )
    with pytest.raises(Unmappable) as caught:
        normalize("servicenow", record, mapping)
    assert caught.value.field == "variables.access_resource"


# -- unmappable: 422 naming the field ---------------------------------------------------------------------


def test_missing_resource_names_the_variable() -> None:
    problem = unmappable(load("servicenow", "ritm_missing_resource.json"))
    assert problem.field == "variables.access_resource"
    assert "access_request" in problem.reason


def test_sys_id_reference_as_beneficiary_is_refused_with_advice() -> None:
    problem = unmappable(load("servicenow", "ritm_requested_for_sys_id.json"))
    assert problem.field == "variables.requested_for"
    assert "sys_id" in problem.reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"state": "99"}, "state"),
        ({"state": ""}, "state"),
        ({"sys_id": ""}, "sys_id"),
        ({"sys_mod_count": "many"}, "sys_mod_count"),
        ({"sys_updated_on": "yesterday"}, "sys_updated_on"),
        ({"sys_updated_on": ""}, "sys_updated_on"),
    ],
)
def test_record_fields_that_cannot_be_read(change: dict[str, Any], field: str) -> None:
    record = load("servicenow", "ritm_requested.json")
    record.update(change)
    assert unmappable(record).field == field


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("access_duration", "30 days"),
        ("access_duration", "-P1D"),
        ("access_duration", "P0D"),
        ("access_until", "next friday"),
        ("request_kind", "teleport"),
        ("requested_for_kind", "alien"),
        ("access_system", "okta/prod!"),
        ("access_resource", "00g1engadmins"),
        ("access_resource", "entra:group:abc"),
    ],
)
def test_variables_that_cannot_be_read_name_themselves(variable: str, value: str) -> None:
    record = load("servicenow", "ritm_requested.json")
    record["variables"][variable] = value
    assert unmappable(record).field == f"variables.{variable}"


def test_missing_privilege_without_a_default() -> None:
    record = load("servicenow", "ritm_requested.json")
    record["variables"].update({"access_system": "github", "access_resource": "repo:acme/api"})
    del record["variables"]["access_privilege"]
    assert unmappable(record).field == "variables.access_privilege"


def test_a_bad_record_in_a_page_is_located_and_the_others_go_on() -> None:
    page = load("servicenow", "table_api_page.json")
    page["result"][1]["state"] = "42"
    results = normalize_servicenow(page, default_mapping())
    (invalid,) = [r for r in results if isinstance(r, Invalid)]
    assert invalid.problem.field == "result[1].state"
    assert len(results) == len(page["result"])
    assert any(isinstance(r, TicketObservation) for r in results)


def test_a_page_of_only_bad_records_is_unmappable() -> None:
    page = load("servicenow", "table_api_page.json")
    for record in page["result"]:
        record["state"] = "42"
    assert unmappable(page).field == "result[0].state"


def test_overlong_identifier_is_refused_naming_its_source() -> None:
    record = load("servicenow", "ritm_requested.json")
    record["variables"]["project"] = "p" * 500
    assert unmappable(record).field == "variables.project"


def test_overlong_justification_is_truncated_not_refused() -> None:
    record = load("servicenow", "ritm_requested.json")
    record["variables"]["business_justification"] = "x" * 10_000
    justification = observe(record).draft.justification
    assert justification is not None
    assert len(justification) == 4000
    assert justification.endswith("…")


@pytest.mark.parametrize("body", ["text", 42, None])
def test_bodies_that_are_not_records(body: Any) -> None:
    assert unmappable(body).field == "<body>"


def test_a_page_element_that_is_not_an_object() -> None:
    assert unmappable({"result": ["RITM0010042"]}).field == "result[0]"


def test_nul_characters_in_stored_fields_are_refused() -> None:
    record = load("servicenow", "ritm_requested.json")
    record["number"] = "RITM\x00001"
    assert unmappable(record).field == "number"
