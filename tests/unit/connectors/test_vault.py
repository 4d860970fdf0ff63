"""Vault audit lines: policy, role, user and group writes, tokens, leases, HMAC'd values, failures."""

from __future__ import annotations

import pytest

from closeloop.contracts.grants import GrantEvent
from closeloop.contracts.identity import IdentityKind
from connectors import vault
from connectors.errors import MalformedRecord
from tests.unit.connectors.support import Runner, fixture, summary

CI = "vault:approle:terraform-ci"
NEW_TOKEN = "vault:token:hmac-sha256:2005efd2921f606290adb8b9117538c46ffdf376cea6221716256933b4a42996"
LEASE = "database/creds/readonly/2f6a614c-4aa2-7b19-24b9-ad944a8d4de6"

EXPECTED = {
    "policy_write": [("grant", "vault:policy:deployers|vault:policy:deployers|defined")],
    "policy_delete": [("revoke", "vault:policy:deployers|vault:policy:deployers|defined")],
    "legacy_policy_write": [("grant", "vault:policy:readers|vault:policy:readers|defined")],
    "approle_role_write": [
        ("grant", f"{CI}|vault:policy:ci-provisioner|attached"),
        ("grant", f"{CI}|vault:policy:kv-read|attached"),
    ],
    "userpass_user_write": [
        ("grant", "vault:user:userpass/uma|vault:policy:default|attached"),
        ("grant", "vault:user:userpass/uma|vault:policy:kv-read|attached"),
    ],
    "k8s_auth_role_write": [("grant", "vault:role:kubernetes/payments-api|vault:policy:payments-db|attached")],
    "identity_group_write": [
        ("grant", "vault:group:8c9d0e1f-2a3b-4c4d-9e5f-6a7b8c9d0e1f|vault:policy:sre-ops|attached"),
        (
            "grant",
            "vault:entity:6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d|vault:group:8c9d0e1f-2a3b-4c4d-9e5f-6a7b8c9d0e1f|member",
        ),
    ],
    "token_create": [("grant", f"{NEW_TOKEN}|vault:auth:token|token")],
    "token_revoke_accessor": [("revoke", f"{NEW_TOKEN}|vault:auth:token|token")],
    "lease_issue": [("grant", f"vault:lease:{LEASE}|vault:secretsrole:database/creds/readonly|lease")],
    "lease_revoke": [("revoke", f"vault:lease:{LEASE}|vault:secretsrole:database/creds/readonly|lease")],
    "lease_revoke_prefix": [("revoke", "vault:lease:aws/creds/deploy*|vault:secretsrole:aws/creds/deploy|lease")],
    "lease_revoke_hmac_body": [],
    "approle_role_write_hmac": [],
    "permission_denied_policy_write": [],
    "kv_write_not_a_grant": [],
}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_each_path_yields_the_right_entitlements(name: str, expected: list[tuple[str, str]]) -> None:
    assert summary(Runner("vault").events(fixture("vault", name))) == expected


def test_only_the_response_line_counts() -> None:
    request_result, response_result = Runner("vault").results(fixture("vault", "policy_write"))
    assert request_result.skipped == "request_line"
    assert len(response_result.events) == 1


def test_role_updates_are_diffed_against_the_cached_policy_list_and_delete_revokes_all() -> None:
    runner = Runner("vault")
    runner.fixture_events("approle_role_write")
    assert summary(runner.fixture_events("approle_role_update")) == [
        ("grant", f"{CI}|vault:policy:vault-admins|attached"),
        ("revoke", f"{CI}|vault:policy:kv-read|attached"),
    ]
    assert summary(runner.fixture_events("approle_role_delete")) == [
        ("revoke", f"{CI}|vault:policy:ci-provisioner|attached"),
        ("revoke", f"{CI}|vault:policy:vault-admins|attached"),
    ]


def test_revoking_by_token_finds_the_accessor_recorded_at_creation() -> None:
    runner = Runner("vault")
    runner.fixture_events("token_create")
    assert summary(runner.fixture_events("token_revoke_by_token")) == [
        ("revoke", f"{NEW_TOKEN}|vault:auth:token|token")
    ]


def test_revoking_by_unknown_token_yields_nothing() -> None:
    results = Runner("vault").results(fixture("vault", "token_revoke_by_token"))
    assert results[-1].skipped == "token_not_cached"


def test_token_creation_carries_credential_expiry_and_policies() -> None:
    (event,) = Runner("vault").fixture_events("token_create")
    assert isinstance(event, GrantEvent)
    assert event.principal_kind is IdentityKind.API_TOKEN
    assert event.credential is not None
    assert event.credential.credential_type == "vault_token"
    assert event.expires_at is not None
    assert (event.expires_at - event.occurred_at).total_seconds() == 3600
    assert event.details["policies"] == "default,deploy"
    assert event.actor is not None
    assert event.actor.is_automation is True  # an approle login


def test_hmac_values_are_counted_not_guessed() -> None:
    results = Runner("vault").results(fixture("vault", "approle_role_write_hmac"))
    assert results[-1].skipped == "hmac_values"


def test_failed_request_is_not_a_grant() -> None:
    results = Runner("vault").results(fixture("vault", "permission_denied_policy_write"))
    assert results[-1].skipped == "failed_operation"


def test_line_without_path_is_malformed() -> None:
    with pytest.raises(MalformedRecord):
        vault.normalize({"type": "response", "request": {"id": "x"}})
