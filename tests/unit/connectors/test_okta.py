"""Okta System Log events: every handled event type, legacy names, failures, hook envelopes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged
from closeloop.contracts.identity import IdentityKind
from connectors import okta
from connectors.errors import MalformedRecord
from tests.unit.connectors.support import Runner, context, fixture, summary

ALICE = "okta:user:alice.ng@acme.example"
GROUP = "okta:group:00g1engadmins000x697"
APP = "okta:app:0oa1githubent000x697"
TOKEN = "okta:apitoken:00T1deploytok000x697"

EXPECTED = {
    "group_membership_add": [("grant", f"{ALICE}|{GROUP}|member")],
    "group_membership_remove": [("revoke", f"{ALICE}|{GROUP}|member")],
    "app_membership_add": [("grant", f"{ALICE}|{APP}|assigned")],
    "app_membership_remove": [("revoke", f"{ALICE}|{APP}|assigned")],
    "user_privilege_grant": [
        ("grant", f"{ALICE}|okta:adminrole:ORG_ADMIN|assigned"),
        ("grant", f"{ALICE}|okta:adminrole:APP_ADMIN|assigned"),
    ],
    "user_privilege_revoke": [("revoke", f"{ALICE}|okta:adminrole:ORG_ADMIN|assigned")],
    "group_privilege_grant": [("grant", f"{GROUP}|okta:adminrole:HELP_DESK_ADMIN|assigned")],
    "group_privilege_revoke": [("revoke", f"{GROUP}|okta:adminrole:HELP_DESK_ADMIN|assigned")],
    "api_token_create": [("grant", f"{TOKEN}|okta:org:ops.admin@acme.example|token")],
    "api_token_revoke": [("revoke", f"{TOKEN}|okta:org:ops.admin@acme.example|token")],
    "user_deactivate": [("status:deactivated", ALICE)],
    "user_suspend": [("status:suspended", ALICE)],
    "user_delete_initiated": [("status:deleted", ALICE)],
    "legacy_group_add": [("grant", f"{ALICE}|{GROUP}|member")],
    "failed_group_add": [],
    "session_start": [],
    "automation_actor_app_add": [("grant", f"{ALICE}|{APP}|assigned")],
    "event_hook_delivery": [
        ("grant", f"{ALICE}|{GROUP}|member"),
        ("grant", f"{ALICE}|okta:adminrole:ORG_ADMIN|assigned"),
        ("grant", f"{ALICE}|okta:adminrole:APP_ADMIN|assigned"),
    ],
}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_each_event_type_yields_the_right_entitlements(name: str, expected: list[tuple[str, str]]) -> None:
    assert summary(Runner("okta").events(fixture("okta", name))) == expected


def test_group_membership_event_carries_time_actor_aliases_and_vendor_ids() -> None:
    (event,) = Runner("okta").events(fixture("okta", "group_membership_add"))
    assert isinstance(event, GrantEvent)
    assert event.occurred_at == datetime(2024, 3, 5, 9, 12, 44, 123000, tzinfo=UTC)
    assert event.source_system == "okta"
    assert event.principal_kind is IdentityKind.HUMAN
    assert set(event.principal_aliases) == {"okta:user:00u1alice000000x697", "email:alice.ng@acme.example"}
    assert event.resource_type == "UserGroup"
    assert event.resource_name == "Eng Admins"
    assert event.vendor_event_id == "5b0f4d1e-9a51-11ee-8f1c-0242ac120002"
    assert event.vendor_event_type == "group.user_membership.add"
    assert event.actor is not None
    assert event.actor.id == "okta:user:ops.admin@acme.example"
    assert event.actor.kind is IdentityKind.HUMAN
    assert event.actor.is_automation is False
    assert event.subject == str(event.key)


def test_targets_are_selected_by_type_not_position() -> None:
    # app add lists AppUser, AppInstance, User: the principal must be the Okta user, not the app username.
    record = fixture("okta", "app_membership_add")
    record["target"] = list(reversed(record["target"]))
    assert summary(okta.parse(record, context())) == [("grant", f"{ALICE}|{APP}|assigned")]


def test_actor_that_is_not_a_user_is_automation() -> None:
    (event,) = Runner("okta").events(fixture("okta", "automation_actor_app_add"))
    assert event.actor is not None
    assert event.actor.is_automation is True
    assert event.actor.kind is IdentityKind.APPLICATION


def test_human_actor_matching_a_bot_pattern_is_automation() -> None:
    record = fixture("okta", "group_membership_add")
    record["actor"]["alternateId"] = "svc-okta-sync@acme.example"
    (event,) = okta.parse(record, context())
    assert event.actor is not None
    assert event.actor.is_automation is True
    assert event.actor.kind is IdentityKind.SERVICE_ACCOUNT


def test_api_token_events_carry_credential_facts_and_configured_org() -> None:
    created, revoked = (
        okta.parse(fixture("okta", n), context(okta_org="acme.okta.com"))[0]
        for n in ("api_token_create", "api_token_revoke")
    )
    assert isinstance(created, GrantEvent)
    assert isinstance(revoked, GrantEvent)
    assert created.key == revoked.key
    assert str(created.key) == f"{TOKEN}|okta:org:acme.okta.com|token"
    assert created.principal_kind is IdentityKind.API_TOKEN
    assert created.credential is not None
    assert created.credential.credential_id == "00T1deploytok000x697"
    assert created.credential.created_at == created.occurred_at
    assert created.credential.status == "active"
    assert revoked.credential is not None
    assert revoked.credential.status == "deleted"
    assert created.details["token_owner"] == "ops.admin@acme.example"
    assert created.source == "okta://acme.okta.com"


def test_lifecycle_events_are_principal_status_changes_keyed_by_principal() -> None:
    (event,) = Runner("okta").events(fixture("okta", "user_deactivate"))
    assert isinstance(event, PrincipalStatusChanged)
    assert event.subject == ALICE


def test_failure_outcome_is_not_a_grant() -> None:
    (result,) = Runner("okta").results(fixture("okta", "failed_group_add"))
    assert result.events == []
    assert result.skipped == "failed_operation"


def test_grant_type_without_the_target_it_needs_is_malformed() -> None:
    with pytest.raises(MalformedRecord, match="target of type User"):
        Runner("okta").events(fixture("okta", "target_null_group_add"))


def test_record_without_event_type_is_malformed() -> None:
    with pytest.raises(MalformedRecord):
        okta.normalize({"uuid": "x", "published": "2024-01-01T00:00:00Z"})


def test_event_ids_are_deterministic() -> None:
    first = okta.parse(fixture("okta", "user_privilege_grant"), context())
    second = okta.parse(fixture("okta", "user_privilege_grant"), context())
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert len({e.event_id for e in first}) == 2


def test_unknown_admin_role_name_becomes_a_role_type_constant() -> None:
    record = fixture("okta", "user_privilege_grant")
    record["debugContext"]["debugData"]["privilegeGranted"] = "Custom Access-Reviewers"
    (event,) = okta.parse(record, context())
    assert isinstance(event, GrantEvent)
    assert event.key.resource == "okta:adminrole:CUSTOM_ACCESS_REVIEWERS"
