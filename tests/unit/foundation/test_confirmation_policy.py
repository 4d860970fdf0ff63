"""One confirmation policy for every revoke: the window follows the entitlement's executor."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from closeloop.contracts.identity import EntitlementKey
from closeloop.record import ConfirmationPolicy, api_executor_for
from closeloop.record.confirmation import policy_document


def key(principal: str, resource: str, privilege: str) -> EntitlementKey:
    return EntitlementKey(principal=principal, resource=resource, privilege=privilege)


OKTA_GROUP = key("okta:user:alice@example.com", "okta:group:00g1eng", "member")
OKTA_APP = key("okta:user:alice@example.com", "okta:app:0oa1app", "assigned")
GITHUB_TEAM = key("github:user:alice-gh", "github:team:acme/payments", "maintainer")
GITHUB_REPO = key("github:user:alice-gh", "github:repo:acme/api", "write")
VAULT = key("vault:entity:e1", "vault:policy:prod-read", "attached")


def test_which_api_executor_handles_a_key() -> None:
    assert api_executor_for(OKTA_GROUP) == "okta"
    assert api_executor_for(GITHUB_TEAM) == "github"
    for manual in (OKTA_APP, GITHUB_REPO, VAULT, key("github:user:x", "github:team:noslug", "member")):
        assert api_executor_for(manual) is None


def test_the_packaged_policy_gives_api_systems_an_hour_and_manual_systems_three_days() -> None:
    policy = ConfirmationPolicy.load()
    assert policy.window(OKTA_GROUP, revoke=True) == timedelta(hours=1)
    assert policy.window(GITHUB_TEAM, revoke=False) == timedelta(hours=1)
    for manual in (OKTA_APP, GITHUB_REPO, VAULT):
        assert policy.is_manual(manual)
        assert policy.window(manual, revoke=True) == timedelta(days=3)


def test_an_executor_the_deployment_does_not_run_makes_its_keys_manual() -> None:
    policy = ConfirmationPolicy(api_executors=("github",), revoke_within=timedelta(minutes=10))
    assert policy.window(OKTA_GROUP, revoke=True) == timedelta(days=3)
    assert policy.window(GITHUB_TEAM, revoke=True) == timedelta(minutes=10)


def test_per_system_override_and_validation(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("confirmation:\n  manual_within: P2D\n  systems:\n    vault: PT30M\n")
    policy = ConfirmationPolicy.load(path)
    assert policy.window(VAULT, revoke=True) == timedelta(minutes=30)
    assert policy.window(OKTA_APP, revoke=True) == timedelta(days=2)
    path.write_text("confirmation:\n  manual_within: -PT1M\n")
    with pytest.raises(ValidationError, match="positive"):
        ConfirmationPolicy.load(path)
    path.write_text("confirmation:\n  unknown_knob: 1\n")
    with pytest.raises(ValidationError):
        ConfirmationPolicy.load(path)
    path.write_text("- a list\n")
    with pytest.raises(ValueError, match="YAML mapping"):
        policy_document(path)
