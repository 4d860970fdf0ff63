"""Policy at request time: tiers, TTLs, NHI owner and TTL rules, exceptions, refusals with reasons."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from closeloop.contracts.entitlements import RevocationTrigger
from closeloop.contracts.identity import IdentityKind
from provisioning.policy import AccessRequest, Grant, Policy, Refusal, iso
from tests.unit.provisioning.factories import T0, key

ADMIN_POLICY = key(
    "aws:user:arn:aws:iam::123456789012:user/alice",
    "aws:policy:arn:aws:iam::aws:policy/AdministratorAccess",
    "attached",
)
CI_ROLE = "aws:role:arn:aws:iam::123456789012:role/ci-deployer"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load()


def request(**overrides: object) -> AccessRequest:
    values: dict[str, object] = {
        "key": key(),
        "principal_kind": IdentityKind.HUMAN,
        "decided_at": T0,
        "approvers": ("bob.manager@example.com",),
        "requested_duration": timedelta(days=30),
    }
    values.update(overrides)
    return AccessRequest(**values)  # type: ignore[arg-type]


def test_default_policy_loads_and_every_rule_names_a_tier(policy: Policy) -> None:
    assert set(policy.tiers) == {"admin", "privileged", "standard"}
    assert policy.rules[-1].name == "everything-else"


def test_standard_request_gets_expiry_triggers_owner_and_recertification(policy: Policy) -> None:
    decision = policy.evaluate(request(project="payments-oncall"))
    assert isinstance(decision, Grant)
    assert decision.tier == "standard"
    assert decision.expires_at == T0 + timedelta(days=30)
    assert decision.owner == "bob.manager@example.com"  # owner_from_approver
    assert decision.recertification_interval == timedelta(days=180)
    assert decision.revocation_triggers == (
        RevocationTrigger.TICKET,
        RevocationTrigger.EXPIRY,
        RevocationTrigger.OFFBOARDING,
        RevocationTrigger.PROJECT_END,
        RevocationTrigger.RECERTIFICATION,
    )


def test_ttl_beyond_the_tier_maximum_is_refused_not_shortened(policy: Policy) -> None:
    decision = policy.evaluate(request(key=ADMIN_POLICY, requested_duration=timedelta(days=30)))
    assert isinstance(decision, Refusal)
    assert decision.rule == "cloud-admin-policies"
    assert "requested TTL P30D exceeds the maximum P7D for tier 'admin'" in decision.reason


def test_requested_until_is_measured_from_the_approval(policy: Policy) -> None:
    allowed = policy.evaluate(
        request(key=ADMIN_POLICY, requested_duration=None, requested_until=T0 + timedelta(days=7))
    )
    assert isinstance(allowed, Grant)
    assert allowed.expires_at == T0 + timedelta(days=7)
    past = policy.evaluate(request(requested_duration=None, requested_until=T0 - timedelta(hours=1)))
    assert isinstance(past, Refusal)
    assert "not after the approval" in past.reason


def test_default_ttl_applies_when_the_tier_has_one_and_refuses_when_it_has_none(policy: Policy) -> None:
    standard = policy.evaluate(request(requested_duration=None))
    assert isinstance(standard, Grant)
    assert standard.expires_at == T0 + timedelta(days=90)
    admin = policy.evaluate(request(key=ADMIN_POLICY, requested_duration=None))
    assert isinstance(admin, Refusal)
    assert "no TTL requested" in admin.reason


def test_privilege_list_rule_matches_team_maintainers(policy: Policy) -> None:
    decision = policy.evaluate(request(key=key("github:user:alice", "github:team:acme/platform", "maintainer")))
    assert isinstance(decision, Grant)
    assert decision.tier == "privileged"


def test_nhi_without_owner_is_refused_with_the_reason(policy: Policy) -> None:
    decision = policy.evaluate(
        request(
            key=key(CI_ROLE, "aws:policy:arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", "attached"),
            principal_kind=IdentityKind.SERVICE_ACCOUNT,
        )
    )
    assert isinstance(decision, Refusal)
    assert "non-human identity (service_account) has no owner" in decision.reason


def test_nhi_never_takes_an_approver_as_owner_or_a_default_ttl(policy: Policy) -> None:
    decision = policy.evaluate(request(principal_kind=IdentityKind.AI_AGENT, requested_duration=None, owner=None))
    assert isinstance(decision, Refusal)
    assert "has no owner" in decision.reason
    assert "requested no TTL" in decision.reason


def test_nhi_with_owner_and_ttl_is_granted_with_owner_departure_trigger(policy: Policy) -> None:
    decision = policy.evaluate(
        request(
            principal_kind=IdentityKind.SERVICE_ACCOUNT,
            owner="carol.lead@example.com",
            requested_duration=timedelta(days=60),
        )
    )
    assert isinstance(decision, Grant)
    assert decision.owner == "carol.lead@example.com"
    assert RevocationTrigger.OWNER_DEPARTURE in decision.revocation_triggers
    assert RevocationTrigger.OFFBOARDING not in decision.revocation_triggers


def test_nhi_maximum_caps_a_longer_tier_maximum(policy: Policy) -> None:
    decision = policy.evaluate(
        request(principal_kind=IdentityKind.BOT, owner="carol.lead@example.com", requested_duration=timedelta(days=120))
    )
    assert isinstance(decision, Refusal)
    assert "exceeds the maximum P90D for non-human identities" in decision.reason


def test_nhi_cannot_own_itself(policy: Policy) -> None:
    decision = policy.evaluate(request(principal_kind=IdentityKind.BOT, owner="okta:user:alice@example.com"))
    assert isinstance(decision, Refusal)
    assert "cannot own itself" in decision.reason


def test_inactive_principal_is_refused(policy: Policy) -> None:
    decision = policy.evaluate(request(principal_inactive=True))
    assert isinstance(decision, Refusal)
    assert "deactivated, suspended or deleted" in decision.reason


def exception_request(**overrides: object) -> AccessRequest:
    values: dict[str, object] = {
        "exception": True,
        "requested_duration": None,
        "incident_ticket": "INC0012345",
        "justification": "database outage, need admin to fail over",
        "window_start": T0,
        "window_end": T0 + timedelta(hours=4),
    }
    values.update(overrides)
    return request(**values)


def test_exception_is_bound_to_its_window_and_reviewer(policy: Policy) -> None:
    decision = policy.evaluate(exception_request())
    assert isinstance(decision, Grant)
    assert decision.expires_at == T0 + timedelta(hours=4)
    assert decision.exception_window_end == T0 + timedelta(hours=4)
    assert decision.reviewer == "bob.manager@example.com"
    assert RevocationTrigger.EXCEPTION_WINDOW_END in decision.revocation_triggers


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"window_end": None}, "must be time-bound"),
        ({"window_end": T0 + timedelta(hours=25)}, "window P1DT1H exceeds the maximum P1D"),
        ({"incident_ticket": None}, "must name its incident ticket"),
        ({"justification": "  "}, "must give a justification"),
        ({"approvers": ()}, "approved by a named reviewer"),
        ({"window_start": T0 - timedelta(hours=3), "window_end": T0 - timedelta(hours=1)}, "already ended"),
    ],
)
def test_exception_rules_refuse_with_the_broken_rule(
    policy: Policy, overrides: dict[str, object], problem: str
) -> None:
    decision = policy.evaluate(exception_request(**overrides))
    assert isinstance(decision, Refusal)
    assert problem in decision.reason


def test_all_problems_are_reported_together(policy: Policy) -> None:
    decision = policy.evaluate(exception_request(incident_ticket=None, justification=None))
    assert isinstance(decision, Refusal)
    assert "incident ticket" in decision.reason
    assert "justification" in decision.reason


def test_custom_policy_file_and_validation(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "tiers:\n  only:\n    max_ttl: P1D\nrules:\n  - name: all\n    tier: only\nconfirmation:\n  systems:\n    okta: PT5M\n"
    )
    loaded = Policy.load(path)
    assert loaded.confirmation.window(
        key("okta:user:a@example.com", "okta:app:0oa1", "assigned"), revoke=True
    ) == timedelta(minutes=5)
    refused = loaded.evaluate(request(requested_duration=timedelta(days=2)))
    assert isinstance(refused, Refusal)
    path.write_text("tiers:\n  only:\n    max_ttl: P1D\nrules:\n  - name: all\n    tier: missing\n")
    with pytest.raises(ValidationError, match="unknown tier"):
        Policy.load(path)
    path.write_text("tiers:\n  only:\n    max_ttl: P1D\n    default_ttl: P2D\nrules:\n  - name: all\n    tier: only\n")
    with pytest.raises(ValidationError, match="default_ttl must not exceed max_ttl"):
        Policy.load(path)
    path.write_text("- just a list\n")
    with pytest.raises(ValueError, match="YAML mapping"):
        Policy.load(path)


def test_no_matching_rule_is_a_refusal(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "tiers:\n  only:\n    max_ttl: P1D\nrules:\n  - name: okta-only\n    system: okta\n    tier: only\n"
    )
    decision = Policy.load(path).evaluate(request(key=key("github:user:alice", "github:team:acme/x", "member")))
    assert isinstance(decision, Refusal)
    assert "no policy rule" in decision.reason


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=7), "P7D"),
        (timedelta(hours=24), "P1D"),
        (timedelta(hours=4, minutes=30), "PT4H30M"),
        (timedelta(0), "PT0S"),
    ],
)
def test_iso_durations_in_reasons(delta: timedelta, text: str) -> None:
    assert iso(delta) == text
