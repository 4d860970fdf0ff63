"""Canonical names per the closeloop key rules: principals, resources, systems, kinds."""

from __future__ import annotations

import pytest

from closeloop.contracts.identity import IdentityKind
from closeloop.contracts.tickets import TicketKind
from request_intake.canonical import (
    NamingError,
    canonical_principal,
    canonical_resource,
    default_privilege,
    implied_identity_kind,
    normalize_system,
    parse_identity_kind,
    parse_kind,
)
from request_intake.mapping import CommonMapping, load_mapping


@pytest.fixture(scope="module")
def common() -> CommonMapping:
    return load_mapping().common


@pytest.mark.parametrize(
    ("raw", "system", "expected"),
    [
        ("Alice@Example.com", "okta", "okta:user:alice@example.com"),
        ("okta:user:Alice@Example.com", None, "okta:user:alice@example.com"),
        ("OKTA:USER:alice@example.com", "okta", "okta:user:alice@example.com"),
        ("Octocat", "github", "github:user:octocat"),
        ("entra:serviceprincipal:7f3a-Obj", "entra", "entra:serviceprincipal:7f3a-Obj"),
        ("arn:aws:iam::123456789012:role/CI-Deployer", "aws", "aws:role:arn:aws:iam::123456789012:role/CI-Deployer"),
        ("arn:aws:iam::123456789012:user/Bob", None, "aws:user:arn:aws:iam::123456789012:user/Bob"),
        ("system:serviceaccount:payments:deployer", "k8s", "k8s:serviceaccount:payments/deployer"),
        ("serviceaccount:payments/deployer", "k8s", "k8s:serviceaccount:payments/deployer"),
        ("approle:payments-deploy", "vault", "vault:approle:payments-deploy"),
        ("alice@example.com", None, None),
    ],
)
def test_principals(raw: str, system: str | None, expected: str | None, common: CommonMapping) -> None:
    assert canonical_principal(raw, system, common) == expected


def test_identity_system_qualifies_bare_beneficiaries() -> None:
    common = load_mapping(overrides={"common": {"identity_system": "okta"}}).common
    assert canonical_principal("Alice@Example.com", None, common) == "okta:user:alice@example.com"


@pytest.mark.parametrize("raw", ["62826bf03710200044e0bfc8bcbe5df1", "arn:nonsense"])
def test_principals_refused(raw: str, common: CommonMapping) -> None:
    with pytest.raises(NamingError):
        canonical_principal(raw, "okta", common)


@pytest.mark.parametrize(
    ("raw", "system", "expected"),
    [
        ("okta:group:00g1engadmins", None, ("okta", "okta:group:00g1engadmins")),
        ("okta:group:00g1engadmins", "okta", ("okta", "okta:group:00g1engadmins")),
        ("group:00g1engadmins", "okta", ("okta", "okta:group:00g1engadmins")),
        ("Group:00g1EngAdmins", "okta", ("okta", "okta:group:00g1EngAdmins")),
        ("repo:acme/api", "github", ("github", "github:repo:acme/api")),
        ("arn:aws:iam::aws:policy/AdministratorAccess", None, ("aws", "aws:policy:arn:aws:iam::aws:policy/AdministratorAccess")),
        ("policy:arn:aws:iam::aws:policy/ReadOnlyAccess", "aws", ("aws", "aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess")),
        ("k8s:role:payments/deployer", "k8s", ("k8s", "k8s:role:payments/deployer")),
        ("servicenow:role:itil", "servicenow", ("servicenow", "servicenow:role:itil")),
        # Names as people write them: a provisional id of the system's default type, bound late by the catalog.
        ("Engineering Admins", "okta", ("okta", "okta:group:Engineering Admins")),
        ("acme/payments", "github", ("github", "github:repo:acme/payments")),
        ("ReadOnlyAccess", "aws", ("aws", "aws:policy:ReadOnlyAccess")),
        ("payments-admin", "my_idp", ("my_idp", "my_idp:resource:payments-admin")),
    ],
)  # fmt: skip
def test_resources(raw: str, system: str | None, expected: tuple[str, str], common: CommonMapping) -> None:
    assert canonical_resource(raw, system, common) == expected


@pytest.mark.parametrize(
    ("raw", "system", "message"),
    [
        ("group:00g1", None, "no access_system"),
        ("entra:group:abc", "okta", "belongs to system 'entra'"),
        ("arn:aws:iam::aws:policy/X", "okta", "belongs to system 'aws'"),
    ],
)
def test_resources_refused(raw: str, system: str | None, message: str, common: CommonMapping) -> None:
    with pytest.raises(NamingError, match=message):
        canonical_resource(raw, system, common)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Okta", "okta"), ("Azure AD", "entra"), ("Microsoft Entra ID", "entra"), ("Kubernetes", "k8s"), ("HashiCorp Vault", "vault"), ("AWS IAM", "aws"), ("my_idp", "my_idp")],
)  # fmt: skip
def test_systems(raw: str, expected: str, common: CommonMapping) -> None:
    assert normalize_system(raw, common) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("access_request", TicketKind.ACCESS_REQUEST), ("Revocation Request", TicketKind.REVOCATION_REQUEST), ("break-glass", TicketKind.EXCEPTION),
     ("Leaver", TicketKind.OFFBOARDING), ("access review", TicketKind.RECERTIFICATION), ("project_end", TicketKind.PROJECT_END), ("teleport", None)],
)  # fmt: skip
def test_kinds(raw: str, expected: TicketKind | None, common: CommonMapping) -> None:
    assert parse_kind(raw, common) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("human", IdentityKind.HUMAN), ("Service Account", IdentityKind.SERVICE_ACCOUNT), ("NHI", IdentityKind.SERVICE_ACCOUNT), ("ai_agent", IdentityKind.AI_AGENT), ("API key", IdentityKind.API_TOKEN), ("alien", None)],
)  # fmt: skip
def test_identity_kinds(raw: str, expected: IdentityKind | None, common: CommonMapping) -> None:
    assert parse_identity_kind(raw, common) is expected


@pytest.mark.parametrize(
    ("principal", "expected"),
    [("okta:user:a@example.com", IdentityKind.HUMAN), ("github:user:dependabot[bot]", IdentityKind.BOT), ("k8s:serviceaccount:ns/sa", IdentityKind.SERVICE_ACCOUNT),
     ("aws:role:arn:aws:iam::1:role/x", IdentityKind.WORKLOAD), ("vault:entity:abc", IdentityKind.UNKNOWN), (None, IdentityKind.UNKNOWN)],
)  # fmt: skip
def test_implied_identity_kinds(principal: str | None, expected: IdentityKind, common: CommonMapping) -> None:
    assert implied_identity_kind(principal, common) is expected


def test_default_privileges(common: CommonMapping) -> None:
    assert default_privilege("okta:group:00g1", common) == "member"
    assert default_privilege("aws:policy:arn:aws:iam::aws:policy/X", common) == "attached"
    assert default_privilege("github:repo:acme/api", common) is None
