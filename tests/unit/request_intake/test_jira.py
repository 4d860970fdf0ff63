"""Jira webhooks -> observations: transitions, categories, resolutions, Cloud vs Server, JSM fields, skips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from closeloop.contracts.identity import IdentityKind
from closeloop.contracts.tickets import ApprovalDecision, TicketKind, TicketTransition
from request_intake.mapping import Mapping, load_mapping
from request_intake.normalizers import jira, normalize
from request_intake.observation import TicketObservation
from request_intake.problems import Skipped, Unmappable
from tests.unit.request_intake.fixtures import DATA, default_mapping, jira_site_mapping, load

T = TicketTransition


def observe(payload: Any, mapping: Mapping | None = None) -> TicketObservation:
    [result] = normalize("jira", payload, mapping or jira_site_mapping())
    assert isinstance(result, TicketObservation), result
    return result


def skipped(payload: Any, mapping: Mapping | None = None) -> Skipped:
    [result] = normalize("jira", payload, mapping or jira_site_mapping())
    assert isinstance(result, Skipped), result
    return result


def test_created_request_maps_custom_fields_from_the_site_mapping() -> None:
    obs = observe(load("jira", "cloud_issue_created.json"))
    event = obs.draft
    assert obs.phase is T.REQUESTED
    assert obs.version == 20001
    assert obs.state_key == "10442"
    assert event.system == "jira"
    assert (event.ticket_id, event.ticket_number) == ("10442", "ACC-42")
    assert event.kind is TicketKind.ACCESS_REQUEST
    assert event.requested_for == "okta:user:alice.smith@example.com"  # user picker -> emailAddress
    assert str(event.entitlement) == "okta:user:alice.smith@example.com|okta:group:00g2finance|member"
    assert event.requested_duration == timedelta(hours=8)
    assert event.owner == "bob.owner@example.com"
    assert event.justification == "Quarter-end close needs the finance reports"
    assert event.requested_by == "alice.smith@example.com"
    assert event.table == "Service Request with Approvals"
    assert event.source == "jira://acme.atlassian.net"
    assert event.ticket_url == "https://acme.atlassian.net/browse/ACC-42"
    assert event.occurred_at == datetime(2026, 1, 5, 8, 55, 12, 230000, tzinfo=UTC)  # webhook timestamp (ms)
    [pending] = event.approvers
    assert (pending.approver, pending.decision, pending.decided_at) == (
        "carol.approver@example.com",
        ApprovalDecision.REQUESTED,
        None,
    )


def test_a_jira_field_naming_the_group_as_people_do_is_kept_as_written() -> None:
    payload = load("jira", "cloud_issue_created.json")
    payload["issue"]["fields"]["customfield_10052"] = "Finance Reporting"
    event = observe(payload).draft
    assert event.access is not None
    assert event.access.resource == "okta:group:Finance Reporting"  # provisional, bound by the catalog
    assert event.references is not None
    assert (event.references.requested_for, event.references.resource) == (
        "alice.smith@example.com",
        "Finance Reporting",
    )


def test_status_transition_by_configured_status_id() -> None:
    obs = observe(load("jira", "cloud_transition_approved.json"))
    assert obs.phase is T.APPROVED
    assert obs.version == 20005
    assert obs.vendor_state == "Approved"
    assert obs.previous_vendor_state == "Waiting for approval"
    assert obs.previous_phase_hint is T.REQUESTED
    [approval] = obs.draft.approvers
    assert approval.decision is ApprovalDecision.APPROVED
    assert approval.decided_at == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    assert obs.draft.actor == "carol.approver@example.com"


def test_done_transition_closes_the_ticket() -> None:
    obs = observe(load("jira", "cloud_transition_done.json"))
    assert obs.phase is T.CLOSED_COMPLETE
    # resolutiondate with a +0100 offset, no colon
    assert obs.draft.closed_at == datetime(2026, 1, 6, 9, 20, 0, 480000, tzinfo=UTC)
    # Cloud user without an email: the account id names the actor.
    assert obs.draft.actor == "5b10ac8d82e05b22cc7d4ef5"


def test_declined_resolution_in_a_done_category_is_a_rejection() -> None:
    obs = observe(load("jira", "cloud_transition_declined.json"))
    assert obs.phase is T.REJECTED  # status 10016 is not configured: category done + resolution Declined
    assert obs.draft.approvers[0].decision is ApprovalDecision.REJECTED


@pytest.mark.parametrize(("resolution", "expected"), [("Won't Do", T.CLOSED_CANCELLED), ("Duplicate", T.CLOSED_CANCELLED), ("Done", T.CLOSED_COMPLETE), ("Rejected", T.REJECTED)])  # fmt: skip
def test_resolution_refines_a_done_category(resolution: str, expected: TicketTransition) -> None:
    payload = load("jira", "cloud_transition_declined.json")
    payload["changelog"]["items"][0]["toString"] = resolution
    assert observe(payload).phase is expected


@pytest.mark.parametrize(("category", "expected"), [("new", T.REQUESTED), ("indeterminate", T.IN_FULFILMENT), ("done", T.CLOSED_COMPLETE)])  # fmt: skip
def test_unconfigured_status_falls_back_to_its_category(category: str, expected: TicketTransition) -> None:
    payload = load("jira", "cloud_transition_approved.json")
    status = payload["issue"]["fields"]["status"]
    status.update({"id": "10099", "name": "Custom"})
    status["statusCategory"]["key"] = category
    payload["changelog"]["items"][0].update({"to": "10099", "toString": "Custom"})
    payload["issue"]["fields"]["resolution"] = None
    assert observe(payload).phase is expected


def test_server_reopened_transition() -> None:
    obs = observe(load("jira", "server_transition_reopened.json"))
    event = obs.draft
    assert obs.phase is T.REQUESTED
    assert obs.reopened_hint is True
    assert obs.version == 30412
    assert obs.previous_vendor_state == "Resolved"
    assert event.kind is TicketKind.ACCESS_REQUEST  # issue type "Access Request" in project ITR
    assert event.requested_for == "vault:approle:payments-deploy"  # `<type>:<id>` for the access system
    assert event.requested_for_kind is IdentityKind.SERVICE_ACCOUNT  # explicit field wins
    assert event.access is not None
    assert event.access.privilege == "attached"
    assert event.owner == "grace.lead@example.com"
    assert event.actor == "frank.ops@example.com"  # Server: user by name/key/email
    assert event.occurred_at == datetime(2026, 1, 7, 10, 0, 0, 123000, tzinfo=UTC)
    assert event.source == "jira://jira.acme.example"


def test_issue_deleted_withdraws_the_request() -> None:
    obs = observe(load("jira", "cloud_issue_deleted.json"))
    assert obs.phase is T.CLOSED_CANCELLED
    assert obs.version is None
    assert obs.vendor_state == "deleted"


def test_delivery_key_is_issue_and_changelog() -> None:
    assert jira.delivery_key(load("jira", "cloud_transition_approved.json")) == "10442:20005"
    assert jira.delivery_key(load("jira", "cloud_issue_deleted.json")) == "10444:jira:issue_deleted:1767700000000"
    assert jira.delivery_key({"webhookEvent": "jira:issue_updated"}) is None


def test_event_id_from_issue_and_changelog() -> None:
    approved = observe(load("jira", "cloud_transition_approved.json")).draft.event_id
    assert approved == observe(load("jira", "cloud_transition_approved.json")).draft.event_id
    assert approved != observe(load("jira", "cloud_transition_done.json")).draft.event_id


def test_server_payload_without_field_id_and_capitalised_status_field() -> None:
    payload = load("jira", "cloud_issue_created.json")
    payload["changelog"]["items"][0].pop("fieldId")
    assert observe(payload).phase is T.REQUESTED  # field "Status"


def test_webhook_time_falls_back_to_issue_updated() -> None:
    payload = load("jira", "cloud_transition_approved.json")
    del payload["timestamp"]
    assert observe(payload).draft.occurred_at == datetime(2026, 1, 5, 9, 30, 1, 114000, tzinfo=UTC)


# -- skipped with a reason ----------------------------------------------------------------------------------


def test_non_status_update_is_skipped() -> None:
    result = skipped(load("jira", "cloud_assignee_changed.json"))
    assert (result.why, result.ticket) == ("not_a_status_change", "ACC-42")


def test_comment_is_skipped() -> None:
    assert skipped(load("jira", "cloud_comment_created.json")).why == "unsupported_event"


def test_issue_of_an_unmapped_project_is_skipped() -> None:
    assert skipped(load("jira", "cloud_unrelated_project.json")).why == "not_access_related"


def test_default_mapping_has_no_custom_fields_so_everything_is_skipped() -> None:
    for name in ("cloud_issue_created.json", "cloud_transition_approved.json", "server_transition_reopened.json"):
        assert skipped(load("jira", name), default_mapping()).why == "not_access_related"


# -- unmappable --------------------------------------------------------------------------------------------


def test_missing_resource_names_the_custom_field() -> None:
    with pytest.raises(Unmappable) as caught:
        normalize("jira", load("jira", "cloud_missing_resource.json"), jira_site_mapping())
    assert caught.value.field == "fields.customfield_10052"


def test_access_related_issue_without_configured_fields_names_the_mapping_key() -> None:
    mapping = load_mapping(DATA / "jira" / "site_mapping.yaml", overrides={"jira": {"fields": {"access_resource": []}}})
    with pytest.raises(Unmappable) as caught:
        normalize("jira", load("jira", "cloud_issue_created.json"), mapping)
    assert caught.value.field == "access_resource (no field configured in the jira mapping)"


def test_status_that_the_snapshot_does_not_describe() -> None:
    payload = load("jira", "cloud_transition_approved.json")
    payload["changelog"]["items"][0]["to"] = "10099"
    with pytest.raises(Unmappable) as caught:
        normalize("jira", payload, jira_site_mapping())
    assert caught.value.field == "changelog.items[status].to"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"issue": {"id": "1"}}, "webhookEvent"),
        ({"webhookEvent": "jira:issue_updated"}, "issue"),
        ([1, 2], "<body>"),
    ],
)
def test_bodies_that_are_not_jira_webhooks(payload: Any, field: str) -> None:
    with pytest.raises(Unmappable) as caught:
        normalize("jira", payload, jira_site_mapping())
    assert caught.value.field == field


@pytest.mark.parametrize("changelog_id", ["abc", "²", "-1", "1.5"])
def test_non_numeric_changelog_id(changelog_id: str) -> None:
    payload = load("jira", "cloud_transition_approved.json")
    payload["changelog"]["id"] = changelog_id
    with pytest.raises(Unmappable) as caught:
        normalize("jira", payload, jira_site_mapping())
    assert caught.value.field == "changelog.id"


def test_jsm_approvals_parser() -> None:
    approvals = jira.parse_approvals(
        [
            {
                "finalDecision": "approved",
                "approvers": [
                    {"approver": {"accountId": "abc"}, "approverDecision": "approved"},
                    {"approver": {"emailAddress": "Zed@Example.com"}, "approverDecision": "pending"},
                ],
                "completedDate": {"epochMillis": 1767605400000},
            }
        ]
    )
    assert [(a.approver, a.decision) for a in approvals] == [
        ("abc", ApprovalDecision.APPROVED),
        ("zed@example.com", ApprovalDecision.REQUESTED),
    ]
    assert approvals[0].decided_at == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown approval decision"):
        jira.parse_approvals([{"approvers": [{"approver": {"name": "x"}, "approverDecision": "maybe"}]}])
