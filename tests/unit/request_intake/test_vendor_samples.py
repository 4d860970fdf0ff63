"""Every real vendor sample (`tests/data/vendor-samples/`) through the normalizer: no crash, and tickets
that are not access-related are skipped with a reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from request_intake.normalizers import normalize
from request_intake.observation import TicketObservation
from request_intake.problems import Skipped, Unmappable
from tests.support.vendor_samples import vendor_samples_dir
from tests.unit.request_intake.fixtures import default_mapping, jira_site_mapping

samples_dir = vendor_samples_dir


def lines(name: str) -> list[Any]:
    path = samples_dir() / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_servicenow_sample_is_normalized_or_skipped_with_a_reason() -> None:
    records = lines("servicenow.jsonl")
    assert records, "servicenow.jsonl is empty"
    reasons = []
    for record in records:
        results = normalize("servicenow", record, default_mapping())
        assert len(results) == 1
        [result] = results
        # None of the public samples is an access request: change requests and incidents without
        # access variables, and tables closeloop does not read.
        assert isinstance(result, Skipped), result
        assert result.why in {"not_access_related", "unsupported_table"}
        assert result.ticket is not None
        assert result.ticket.startswith(("CHG", "INC", "CTASK", "PRB"))
        reasons.append(result.why)
    assert "not_access_related" in reasons
    assert "unsupported_table" in reasons


@pytest.mark.parametrize("mapping_name", ["default", "site"])
def test_every_jira_sample_is_normalized_or_skipped_with_a_reason(mapping_name: str) -> None:
    mapping = default_mapping() if mapping_name == "default" else jira_site_mapping()
    payloads = lines("jira.jsonl")
    assert payloads, "jira.jsonl is empty"
    seen: set[str] = set()
    for payload in payloads:
        try:
            [result] = normalize("jira", payload, mapping)
        except Unmappable as exc:  # pragma: no cover - the assertion message is the point
            raise AssertionError(f"sample refused: {exc.describe()}") from exc
        # Jira Software projects (not access desks): nothing is access-related under either mapping.
        assert isinstance(result, Skipped), result
        seen.add(result.why)
    assert seen == {"not_access_related", "not_a_status_change", "unsupported_event"}


def test_jira_samples_become_events_when_their_project_is_an_access_desk() -> None:
    """The same real bodies, declared access-related and given a resource field, exercise the transition rules."""
    from request_intake.mapping import load_mapping

    mapping = load_mapping(
        overrides={
            "jira": {
                "projects": ["TES", "IDT"],
                "fields": {"requested_for": ["fields.reporter"], "access_resource": ["fields.customfield_99999"]},
            },
            "common": {"identity_system": "okta", "default_privileges": {"okta:group": "member"}},
        }
    )
    seen = []
    for payload in lines("jira.jsonl"):
        fields = (payload.get("issue") or {}).get("fields")
        if isinstance(fields, dict):
            fields["customfield_99999"] = "okta:group:00gsample"
        [result] = normalize("jira", payload, mapping)
        if isinstance(result, TicketObservation):
            seen.append((result.draft.ticket_number, result.version, result.phase.value, result.reopened_hint))
            assert result.draft.entitlement is not None
            assert result.draft.entitlement.resource == "okta:group:00gsample"
        else:
            assert isinstance(result, Skipped), result
            assert result.why in {"not_a_status_change", "unsupported_event"}
    assert seen == [
        ("TES-41", 10222, "requested", False),  # Cloud issue_created, status To Do (new)
        ("TES-41", 10227, "in_fulfilment", False),  # To Do -> In Progress (indeterminate)
        ("TES-41", 10228, "closed_complete", False),  # In Progress -> Done, resolution Done
        ("TES-41", 10229, "requested", False),  # Done -> To Do: the handler sees a reopening
        ("IDT-19", None, "closed_cancelled", False),  # issue deleted
        ("TES-4", 10508, "in_fulfilment", False),  # Server: Reopened -> In Progress
        ("TES-4", 10414, "closed_complete", False),  # Server: In Progress -> Resolved
        ("TES-4", 10511, "closed_complete", False),  # Server: Resolved -> Closed
        ("TES-4", 10507, "requested", True),  # Server: issue_reopened
    ]
