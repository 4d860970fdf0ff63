"""Entra ID audit records: Graph and Azure Monitor shapes, groups, roles, PIM, app roles, credentials, status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.contracts.grants import GrantEvent
from closeloop.contracts.identity import IdentityKind
from connectors import entra
from connectors.errors import MalformedRecord
from tests.unit.connectors.support import Runner, fixture, summary

IVAN = "entra:user:ivan.petrov@acme.example"
GROUP = "entra:group:2f3e4d5c-6b7a-4988-a7b6-c5d4e3f2a1b0"
HR_SP = "entra:serviceprincipal:7d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8"
GRAPH_APP = "entra:app:62cb17e7-d25e-4356-ad51-a861585f8634"
CRM_APP = "entra:app:3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"

EXPECTED = {
    "add_member_to_group": [("grant", f"{IVAN}|{GROUP}|member")],
    "remove_member_from_group_export": [("revoke", f"{IVAN}|{GROUP}|member")],
    "add_owner_to_group": [("grant", f"{IVAN}|{GROUP}|owner")],
    "add_member_to_role": [("grant", f"{IVAN}|entra:role:Global Administrator|assigned")],
    "remove_member_from_role": [("revoke", f"{IVAN}|entra:role:Global Administrator|assigned")],
    "pim_add_eligible_timebound": [("grant", f"{IVAN}|entra:role:Application Administrator|eligible")],
    "pim_activation": [("grant", f"{IVAN}|entra:role:Application Administrator|assigned")],
    "pim_remove_permanent": [("revoke", f"{IVAN}|entra:role:Application Administrator|assigned")],
    "pim_request_not_completed": [],
    "add_app_role_to_sp": [("grant", f"{HR_SP}|{GRAPH_APP}|user.read.all")],
    "remove_app_role_from_sp": [("revoke", f"{HR_SP}|{GRAPH_APP}|user.read.all")],
    "add_app_role_grant_to_user": [("grant", f"{IVAN}|{CRM_APP}|default")],
    "remove_app_role_from_user": [("revoke", f"{IVAN}|{CRM_APP}|default")],
    "add_sp_credentials_export": [("grant", f"{HR_SP}|entra:credential:aa11bb22-cc33-4d44-8e55-ff6677889900|owner")],
    "remove_sp_credentials": [("revoke", f"{HR_SP}|entra:credential:0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f|owner")],
    "update_application_secret_rotation": [
        (
            "grant",
            "entra:application:c0ffee00-1111-4222-8333-444455556666|entra:credential:5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d|owner",
        ),
        (
            "revoke",
            "entra:application:c0ffee00-1111-4222-8333-444455556666|entra:credential:0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f|owner",
        ),
    ],
    "disable_account": [("status:deactivated", IVAN)],
    "delete_user": [("status:deleted", IVAN)],
    "failed_add_member_to_group": [],
    "update_user_not_a_grant": [],
    "graph_list_response": [("grant", f"{IVAN}|{GROUP}|member")],
}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_each_activity_yields_the_right_entitlements(name: str, expected: list[tuple[str, str]]) -> None:
    assert summary(Runner("entra").events(fixture("entra", name))) == expected


def test_graph_and_export_shapes_give_the_same_entitlement() -> None:
    graph = fixture("entra", "add_member_to_group")
    export = {
        "time": "2024-09-02T10:15:30.1234567Z",
        "operationName": graph["activityDisplayName"],
        "tenantId": "8d3f1a52-6c1b-4a8e-9f0d-2b7c5e4a1d90",
        "Level": 4,
        "properties": {**graph, "activityDateTime": "2024-09-02T10:15:30.1234567+00:00"},
    }
    (a,), (b,) = entra.parse(graph), entra.parse(export)
    assert isinstance(a, GrantEvent)
    assert isinstance(b, GrantEvent)
    assert a.key == b.key
    assert a.event_id == b.event_id  # same vendor id -> same event id, whichever shape it came in
    assert a.occurred_at == b.occurred_at == datetime(2024, 9, 2, 10, 15, 30, 123456, tzinfo=UTC)
    assert b.source == "entra://8d3f1a52-6c1b-4a8e-9f0d-2b7c5e4a1d90"


def test_target_order_does_not_matter() -> None:
    record = fixture("entra", "add_member_to_group")
    record["targetResources"].reverse()
    assert summary(entra.parse(record)) == EXPECTED["add_member_to_group"]


def test_app_initiated_change_is_automation_and_app_roles_keep_the_app_id_alias() -> None:
    (event,) = Runner("entra").events(fixture("entra", "add_app_role_to_sp"))
    assert isinstance(event, GrantEvent)
    assert event.actor is not None
    assert event.actor.is_automation is True
    assert event.actor.id == "entra:serviceprincipal:0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f"
    assert event.principal_kind is IdentityKind.APPLICATION
    assert "entra:appid:1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d" in event.principal_aliases


def test_pim_timebound_assignment_carries_its_end() -> None:
    (event,) = Runner("entra").events(fixture("entra", "pim_add_eligible_timebound"))
    assert isinstance(event, GrantEvent)
    assert event.expires_at == datetime(2024, 12, 4, 8, 0, tzinfo=UTC)


def test_credentials_added_carry_the_new_key_only() -> None:
    (event,) = Runner("entra").events(fixture("entra", "add_sp_credentials_export"))
    assert isinstance(event, GrantEvent)
    assert event.credential is not None
    assert event.credential.credential_id == "aa11bb22-cc33-4d44-8e55-ff6677889900"
    assert event.credential.credential_type == "entra_client_secret"
    assert event.credential.created_at == event.occurred_at


def test_group_activity_without_a_member_is_malformed() -> None:
    record = fixture("entra", "add_member_to_group")
    record["targetResources"] = [t for t in record["targetResources"] if t["type"] == "Group"]
    with pytest.raises(MalformedRecord, match="no member"):
        entra.parse(record)


def test_record_without_activity_is_malformed() -> None:
    with pytest.raises(MalformedRecord):
        entra.normalize({"id": "x", "targetResources": []})


def test_a_secret_replaced_in_one_change_is_a_rotation() -> None:
    added, removed = Runner("entra").events(fixture("entra", "update_application_secret_rotation"))
    assert isinstance(added, GrantEvent)
    assert added.credential is not None
    assert added.credential.rotated_at == added.occurred_at == datetime(2024, 10, 20, 7, 45, 12, 345678, tzinfo=UTC)
    assert added.credential.credential_type == "entra_client_secret"
    assert isinstance(removed, GrantEvent)
    assert removed.credential is not None
    assert removed.credential.status == "deleted"
