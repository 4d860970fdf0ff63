"""GitHub audit log: org, team, repo membership and roles, enterprise admins, PATs, app installations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.contracts.grants import GrantEvent
from closeloop.contracts.identity import IdentityKind
from connectors import github
from connectors.errors import MalformedRecord
from tests.unit.connectors.support import Runner, fixture, summary

LENA = "github:user:lena-dev"
ORG = "github:org:acme-corp"
TEAM = "github:team:acme-corp/platform-eng"
REPO = "github:repo:acme-corp/payments-api"
ALL_REPO_LEVELS = ["read", "triage", "write", "maintain", "admin"]

EXPECTED = {
    "org_add_member": [("grant", f"{LENA}|{ORG}|member")],
    "org_remove_member": [("revoke", f"{LENA}|{ORG}|member"), ("revoke", f"{LENA}|{ORG}|admin")],
    "org_update_member_to_admin": [("grant", f"{LENA}|{ORG}|admin"), ("revoke", f"{LENA}|{ORG}|member")],
    "team_add_member": [("grant", f"{LENA}|{TEAM}|member")],
    "team_remove_member": [("revoke", f"{LENA}|{TEAM}|member"), ("revoke", f"{LENA}|{TEAM}|maintainer")],
    "team_promote_maintainer": [("grant", f"{LENA}|{TEAM}|maintainer")],
    "team_demote_maintainer": [("revoke", f"{LENA}|{TEAM}|maintainer")],
    "team_add_repository": [("grant", f"{TEAM}|github:repo:acme-corp/infra-live|write")],
    "team_remove_repository": [("revoke", f"{TEAM}|github:repo:acme-corp/infra-live|{lvl}") for lvl in ALL_REPO_LEVELS],
    "repo_add_member": [("grant", f"{LENA}|{REPO}|write")],
    "repo_remove_member": [("revoke", f"{LENA}|{REPO}|{lvl}") for lvl in ALL_REPO_LEVELS],
    "repo_update_member": [("grant", f"{LENA}|{REPO}|admin"), ("revoke", f"{LENA}|{REPO}|write")],
    "business_add_admin": [("grant", f"{LENA}|github:business:acme-enterprise|admin")],
    "business_remove_admin": [("revoke", f"{LENA}|github:business:acme-enterprise|admin")],
    "pat_access_granted": [("grant", f"github:pat:880011|{ORG}|token")],
    "pat_access_revoked": [("revoke", f"github:pat:880011|{ORG}|token")],
    "app_installation_create": [("grant", f"github:app:renovate|{ORG}|installed")],
    "app_installation_destroy": [("revoke", f"github:app:renovate|{ORG}|installed")],
    "bot_actor_team_add": [("grant", "github:user:ci-robot|github:team:acme-corp/release|member")],
    "agent_actor_repo_add": [("grant", f"{LENA}|github:repo:acme-corp/docs|read")],
    "legacy_org_add_member": [("grant", f"github:user:mia-ops|{ORG}|member")],
    "legacy_repo_add_member_no_permission": [("grant", f"github:user:mia-ops|{REPO}|write")],
    "repo_create_not_a_grant": [],
    "api_page": [("grant", f"{LENA}|{ORG}|member"), ("grant", f"{LENA}|{TEAM}|member")],
}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_each_action_yields_the_right_entitlements(name: str, expected: list[tuple[str, str]]) -> None:
    assert summary(Runner("github").events(fixture("github", name))) == expected


def test_epoch_millisecond_times_and_streamed_ids() -> None:
    record = fixture("github", "org_add_member")
    (event,) = github.parse(record)
    assert isinstance(event, GrantEvent)
    assert event.occurred_at == datetime.fromtimestamp(record["@timestamp"] / 1000, tz=UTC)
    assert event.vendor_event_id == record["_document_id"]
    assert "github:userid:6202" in event.principal_aliases
    assert event.source == "github://acme-corp"


def test_legacy_entries_without_document_id_get_a_stable_content_id() -> None:
    record = fixture("github", "legacy_org_add_member")
    (first,), (second,) = github.parse(record), github.parse(dict(reversed(list(record.items()))))
    assert first.vendor_event_id.startswith("sha256:")
    assert first.event_id == second.event_id  # key order does not change the id


def test_bot_and_agent_actors_are_automation() -> None:
    (bot,) = Runner("github").events(fixture("github", "bot_actor_team_add"))
    (agent,) = Runner("github").events(fixture("github", "agent_actor_repo_add"))
    assert bot.actor is not None
    assert bot.actor.kind is IdentityKind.BOT
    assert bot.actor.is_automation is True
    assert agent.actor is not None
    assert agent.actor.kind is IdentityKind.AI_AGENT
    assert agent.actor.is_automation is True


def test_fine_grained_pat_is_an_api_token_with_its_owner() -> None:
    (event,) = Runner("github").events(fixture("github", "pat_access_granted"))
    assert isinstance(event, GrantEvent)
    assert event.principal_kind is IdentityKind.API_TOKEN
    assert event.details["token_owner"] == "lena-dev"
    assert event.credential is not None
    assert event.credential.credential_id == "880011"


def test_default_permission_is_marked() -> None:
    (event,) = Runner("github").events(fixture("github", "legacy_repo_add_member_no_permission"))
    assert isinstance(event, GrantEvent)
    assert event.details["permission_source"] == "github_default"


def test_role_change_without_new_role_is_malformed() -> None:
    with pytest.raises(MalformedRecord, match="new role"):
        Runner("github").events(fixture("github", "update_member_without_role"))


def test_entry_without_action_is_malformed() -> None:
    with pytest.raises(MalformedRecord):
        github.normalize({"actor": "x"})
