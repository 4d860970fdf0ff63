"""Hostile ids never reach an IAM API: the executors refuse them before any request (checked against the
local Okta and GitHub servers, which record every request), and valid ids are encoded as one segment."""

from __future__ import annotations

import pytest

from closeloop.contracts.commands import CommandAction
from provisioning.executors import ExecutionStatus, GitHubExecutor, OktaExecutor
from provisioning.executors.vendor_ids import (
    InvalidVendorId,
    github_login,
    github_repository,
    github_team,
    okta_object_id,
    okta_user,
    segment,
)
from tests.unit.provisioning.factories import key
from tests.unit.provisioning.fake_apis import FakeGitHub, FakeOkta
from tests.unit.provisioning.test_executors import (  # noqa: F401 - fixtures
    ALICE_ID,
    GROUP,
    command,
    github,
    github_executor,
    okta,
    okta_executor,
)

HOSTILE_OKTA = [
    ("okta:user:alice@example.com", "okta:group:.."),
    ("okta:user:alice@example.com", "okta:group:."),
    ("okta:user:alice@example.com", "okta:group:../../users/00u1alice0000000000a"),
    ("okta:user:alice@example.com", "okta:group:%2e%2e"),
    ("okta:user:alice@example.com", "okta:group:00g1engreaders/../x"),
    ("okta:user:..", f"okta:group:{GROUP}"),
    ("okta:user:.", f"okta:group:{GROUP}"),
    ("okta:user:alice@example.com/../../lifecycle/deactivate", f"okta:group:{GROUP}"),
    ("okta:user:alice?x=1", f"okta:group:{GROUP}"),
    ("okta:user:a b@example.com", f"okta:group:{GROUP}"),
]
HOSTILE_GITHUB = [
    ("github:user:alice-gh", "github:team:acme/.."),
    ("github:user:alice-gh", "github:team:acme/."),
    ("github:user:alice-gh", "github:team:../platform"),
    ("github:user:alice-gh", "github:team:acme/platform/../../members"),
    ("github:user:alice-gh", "github:team:acme/%2e%2e"),
    ("github:user:..", "github:team:acme/platform"),
    ("github:user:alice-gh/../..", "github:team:acme/platform"),
    ("github:user:-alice", "github:team:acme/platform"),
    ("github:user:" + "a" * 40, "github:team:acme/platform"),
]


@pytest.mark.parametrize(("principal", "resource"), HOSTILE_OKTA)
@pytest.mark.parametrize("action", [CommandAction.GRANT, CommandAction.REVOKE])
async def test_okta_hostile_ids_send_no_request(
    okta: FakeOkta,  # noqa: F811
    okta_executor: OktaExecutor,  # noqa: F811
    principal: str,
    resource: str,
    action: CommandAction,
) -> None:
    result = await okta_executor.execute(command(key(principal, resource, "member"), action))
    assert result.status is ExecutionStatus.FAILED
    assert "refused before any request" in result.detail
    assert okta.requests == []


@pytest.mark.parametrize(("principal", "resource"), HOSTILE_GITHUB)
@pytest.mark.parametrize("action", [CommandAction.GRANT, CommandAction.REVOKE])
async def test_github_hostile_ids_send_no_request(
    github: FakeGitHub,  # noqa: F811
    github_executor: GitHubExecutor,  # noqa: F811
    principal: str,
    resource: str,
    action: CommandAction,
) -> None:
    result = await github_executor.execute(command(key(principal, resource, "member"), action))
    assert result.status is ExecutionStatus.FAILED
    assert "refused before any request" in result.detail
    assert github.requests == []


async def test_a_dotted_okta_login_is_one_encoded_segment(
    okta: FakeOkta,  # noqa: F811
    okta_executor: OktaExecutor,  # noqa: F811
) -> None:
    okta.users["alice.b@example.com"] = ALICE_ID
    result = await okta_executor.execute(
        command(key("okta:user:alice.b@example.com", f"okta:group:{GROUP}", "member"), CommandAction.GRANT)
    )
    assert result.status is ExecutionStatus.SUCCEEDED
    assert okta.requests[0].path == "/api/v1/users/alice.b@example.com"  # decoded by the server


async def test_an_okta_user_id_answered_by_the_server_is_checked_too(
    okta: FakeOkta,  # noqa: F811
    okta_executor: OktaExecutor,  # noqa: F811
) -> None:
    okta.users["mallory@example.com"] = "../../users/00u1alice0000000000a"
    result = await okta_executor.execute(
        command(key("okta:user:mallory@example.com", f"okta:group:{GROUP}", "member"), CommandAction.REVOKE)
    )
    assert result.status is ExecutionStatus.FAILED
    assert [r.method for r in okta.requests] == ["GET"]  # the lookup only, never the DELETE


def test_vendor_id_rules() -> None:
    assert okta_object_id("00g1abcdefghijklmnop") == "00g1abcdefghijklmnop"
    assert okta_user("jane.doe+ops@example.com") == "jane.doe+ops@example.com"
    assert github_login("octo-cat") == "octo-cat"
    assert github_team("acme/platform_team-2") == ("acme", "platform_team-2")
    assert github_repository("acme/api.v2") == ("acme", "api.v2")
    for bad in ("00g1/..", "..", "0g1abcdefgh", "00g1abc\n"):
        with pytest.raises(InvalidVendorId):
            okta_object_id(bad)
    for bad in ("octo--cat", "octo-", "-octo", "a" * 40, "oct/o"):
        with pytest.raises(InvalidVendorId):
            github_login(bad)
    for bad in ("acme/..", "acme/.", "acme", "acme/a/b"):
        with pytest.raises(InvalidVendorId):
            github_repository(bad) if bad != "acme/a/b" else github_team(bad)


def test_segments_are_encoded_fully() -> None:
    assert segment("a.b/c?d#e%f g") == "a%2Eb%2Fc%3Fd%23e%25f%20g"
    for bad in ("", ".", ".."):
        with pytest.raises(InvalidVendorId):
            segment(bad)
