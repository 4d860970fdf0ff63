"""The field mapping file: packaged defaults, site overrides merged key by key, strict validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from closeloop.contracts.tickets import TicketKind, TicketTransition
from request_intake.mapping import MappingError, load_mapping, merge
from tests.unit.request_intake.fixtures import DATA


def test_defaults_document_the_servicenow_catalog_variables() -> None:
    fields = load_mapping().servicenow.fields
    assert fields.requested_for == ("variables.requested_for",)
    assert fields.access_system == ("variables.access_system",)
    assert fields.access_resource == ("variables.access_resource",)
    assert fields.access_privilege == ("variables.access_privilege",)
    assert fields.access_duration == ("variables.access_duration",)
    assert fields.access_owner == ("variables.access_owner",)
    assert fields.request_kind == ("variables.request_kind",)
    assert fields.business_justification == ("variables.business_justification",)


def test_jira_has_no_custom_field_ids_by_default() -> None:
    fields = load_mapping().jira.fields
    assert fields.requested_for == ()
    assert fields.access_resource == ()
    assert fields.request_kind == ()


def test_site_file_is_merged_over_the_defaults(tmp_path: Path) -> None:
    site = tmp_path / "mapping.yaml"
    site.write_text(
        "servicenow:\n  fields:\n    requested_for: [variables.beneficiary_email]\n"
        "  tables:\n    sc_req_item:\n      states: {'1': requested, '9': fulfilled}\n"
        "jira:\n  statuses: {10001: approved}\n  fields:\n    requested_for: [customfield_1]\n"
    )
    mapping = load_mapping(site)
    assert mapping.servicenow.fields.requested_for == ("variables.beneficiary_email",)
    assert mapping.servicenow.fields.access_resource == ("variables.access_resource",)  # default kept
    table = mapping.servicenow.tables["sc_req_item"]
    # Maps merge key by key: the site adds a custom state and keeps the defaults.
    assert table.states["9"] is TicketTransition.FULFILLED
    assert table.states["3"] is TicketTransition.CLOSED_COMPLETE
    assert table.kind is TicketKind.ACCESS_REQUEST  # sibling keys kept
    assert mapping.jira.statuses == {"10001": TicketTransition.APPROVED}  # integer ids read as strings
    assert mapping.jira.fields.requested_for == ("fields.customfield_1",)  # shorthand expanded
    assert "incident" in mapping.servicenow.tables


def test_the_jira_test_site_mapping_loads() -> None:
    mapping = load_mapping(DATA / "jira" / "site_mapping.yaml")
    assert mapping.jira.request_types["request access"] is TicketKind.ACCESS_REQUEST
    assert mapping.jira.fields.approvers == ("fields.customfield_10027",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("servicenow:\n  fields:\n    requested_four: [x]\n", "requested_four"),
        ("servicenow:\n  tables:\n    sc_req_item:\n      states: {'1': teleported}\n", "states"),
        ("servicenow:\n  timezone: Mars/Olympus\n", "time zone"),
        ("common:\n  kind_aliases: {x: nothing}\n", "kind_aliases"),
        ("- a list\n", "top level"),
        ("servicenow: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_mapping_files_fail_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    site = tmp_path / "bad.yaml"
    site.write_text(text)
    with pytest.raises(MappingError, match=message) as caught:
        load_mapping(site)
    assert str(site) in str(caught.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(tmp_path / "absent.yaml")


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    site = tmp_path / "empty.yaml"
    site.write_text("")
    assert load_mapping(site) == load_mapping()


def test_merge_replaces_lists_and_merges_maps() -> None:
    assert merge({"a": {"b": [1], "c": 1}, "d": 1}, {"a": {"b": [2]}, "e": 2}) == {
        "a": {"b": [2], "c": 1},
        "d": 1,
        "e": 2,
    }
