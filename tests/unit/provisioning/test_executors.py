"""Executors against local servers that serve the Okta and GitHub endpoints: the right requests, the
right headers, idempotence, retries with backoff on 429/5xx, final failures, no token in details."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementStatus
from closeloop.contracts.identity import EntitlementKey
from closeloop.record import Cause, EntitlementRecord
from provisioning.executors import ExecutionStatus, Executors, GitHubExecutor, ManualExecutor, OktaExecutor
from provisioning.executors.http import RetryPolicy, retry_after_seconds
from tests.unit.provisioning.factories import T0, key
from tests.unit.provisioning.fake_apis import FakeGitHub, FakeOkta

FAST = RetryPolicy(timeout_s=5, max_attempts=3, backoff_base_s=0.01, max_backoff_s=0.05)
ALICE_ID = "00u1alice0000000000a"
GROUP = "00g1engreaders"
TEAM = key("github:user:alice-gh", "github:team:acme/platform", "maintainer")


def command(entitlement: EntitlementKey, action: CommandAction) -> ProvisioningCommand:
    record = EntitlementRecord.new(
        entitlement, status=EntitlementStatus.ACTIVE, version=1, updated_at=T0, created_at=T0
    )
    return record.command(
        action, "approved_request" if action is CommandAction.GRANT else "ticket", cause=Cause.new(), actor="test"
    )


@pytest.fixture
async def okta() -> AsyncIterator[FakeOkta]:
    fake = await FakeOkta(users={"alice@example.com": ALICE_ID}, groups={GROUP: set()}).start_okta()
    yield fake
    await fake.stop()


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    fake = await FakeGitHub(org_members={"alice-gh"}, teams={"acme/platform": {}}).start_github()
    yield fake
    await fake.stop()


@pytest.fixture
async def okta_executor(okta: FakeOkta) -> AsyncIterator[OktaExecutor]:
    executor = OktaExecutor(okta.url, SecretStr(okta.token), FAST)
    yield executor
    await executor.close()


@pytest.fixture
async def github_executor(github: FakeGitHub) -> AsyncIterator[GitHubExecutor]:
    executor = GitHubExecutor(github.url, SecretStr(github.token), retry=FAST)
    yield executor
    await executor.close()


async def test_okta_grant_resolves_the_login_and_puts_the_membership(
    okta: FakeOkta, okta_executor: OktaExecutor
) -> None:
    result = await okta_executor.execute(command(key(), CommandAction.GRANT))
    assert result.status is ExecutionStatus.SUCCEEDED
    assert okta.groups[GROUP] == {ALICE_ID}
    lookup, put = okta.requests
    assert (lookup.method, lookup.path) == ("GET", "/api/v1/users/alice@example.com")
    assert (put.method, put.path) == ("PUT", f"/api/v1/groups/{GROUP}/users/{ALICE_ID}")
    assert put.headers["Authorization"] == f"SSWS {okta.token}"
    assert put.headers["Accept"] == "application/json"


async def test_okta_grant_is_idempotent_and_uses_an_okta_id_directly(
    okta: FakeOkta, okta_executor: OktaExecutor
) -> None:
    by_id = key(f"okta:user:{ALICE_ID}")
    for _ in range(2):
        assert (await okta_executor.execute(command(by_id, CommandAction.GRANT))).status is ExecutionStatus.SUCCEEDED
    assert [r.method for r in okta.requests] == ["PUT", "PUT"]
    assert okta.groups[GROUP] == {ALICE_ID}


async def test_okta_revoke_deletes_and_a_second_revoke_is_already_gone(
    okta: FakeOkta, okta_executor: OktaExecutor
) -> None:
    okta.groups[GROUP].add(ALICE_ID)
    first = await okta_executor.execute(command(key(), CommandAction.REVOKE))
    second = await okta_executor.execute(command(key(), CommandAction.REVOKE))
    assert first.status is second.status is ExecutionStatus.SUCCEEDED
    assert "already removed" in second.detail
    assert okta.groups[GROUP] == set()
    assert [(r.method, r.path) for r in okta.requests if r.method == "DELETE"] == [
        ("DELETE", f"/api/v1/groups/{GROUP}/users/{ALICE_ID}")
    ] * 2


async def test_okta_unknown_user_fails_a_grant_and_satisfies_a_revoke(okta_executor: OktaExecutor) -> None:
    ghost = key("okta:user:ghost@example.com")
    assert (await okta_executor.execute(command(ghost, CommandAction.GRANT))).status is ExecutionStatus.FAILED
    assert (await okta_executor.execute(command(ghost, CommandAction.REVOKE))).status is ExecutionStatus.SUCCEEDED


async def test_okta_retries_429_and_5xx_then_succeeds(okta: FakeOkta, okta_executor: OktaExecutor) -> None:
    okta.fail_next(429, headers={"X-Rate-Limit-Reset": str(int(time.time()))})
    okta.fail_next(503)
    result = await okta_executor.execute(command(key(f"okta:user:{ALICE_ID}"), CommandAction.GRANT))
    assert result.status is ExecutionStatus.SUCCEEDED
    assert len(okta.requests) == 3
    assert okta.groups[GROUP] == {ALICE_ID}


async def test_okta_gives_up_after_the_attempts_and_keeps_the_token_out(
    okta: FakeOkta, okta_executor: OktaExecutor
) -> None:
    okta.fail_next(500, times=3)
    result = await okta_executor.execute(command(key(f"okta:user:{ALICE_ID}"), CommandAction.GRANT))
    assert result.status is ExecutionStatus.FAILED
    assert "gave up after 3 attempts" in result.detail
    assert okta.token not in result.detail
    assert len(okta.requests) == 3


async def test_okta_client_errors_are_final_without_retry(okta: FakeOkta) -> None:
    executor = OktaExecutor(okta.url, SecretStr("wrong-token"), FAST)
    try:
        result = await executor.execute(command(key(f"okta:user:{ALICE_ID}"), CommandAction.GRANT))
    finally:
        await executor.close()
    assert result.status is ExecutionStatus.FAILED
    assert "HTTP 401" in result.detail
    assert "wrong-token" not in result.detail
    assert len(okta.requests) == 1


async def test_github_put_sets_the_role_with_bearer_and_api_version(
    github: FakeGitHub, github_executor: GitHubExecutor
) -> None:
    result = await github_executor.execute(command(TEAM, CommandAction.GRANT))
    assert result.status is ExecutionStatus.SUCCEEDED
    assert "active as maintainer" in result.detail
    assert github.teams["acme/platform"] == {"alice-gh": "maintainer"}
    (put,) = github.requests
    assert (put.method, put.path, put.body) == (
        "PUT",
        "/orgs/acme/teams/platform/memberships/alice-gh",
        {"role": "maintainer"},
    )
    assert put.headers["Authorization"] == f"Bearer {github.token}"
    assert put.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert put.headers["Accept"] == "application/vnd.github+json"


async def test_github_pending_invitation_is_reported(github: FakeGitHub, github_executor: GitHubExecutor) -> None:
    outsider = key("github:user:newhire", "github:team:acme/platform", "member")
    result = await github_executor.execute(command(outsider, CommandAction.GRANT))
    assert result.status is ExecutionStatus.SUCCEEDED
    assert "pending" in result.detail


async def test_github_delete_is_idempotent(github: FakeGitHub, github_executor: GitHubExecutor) -> None:
    github.teams["acme/platform"]["alice-gh"] = "maintainer"
    first = await github_executor.execute(command(TEAM, CommandAction.REVOKE))
    second = await github_executor.execute(command(TEAM, CommandAction.REVOKE))
    assert first.status is second.status is ExecutionStatus.SUCCEEDED
    assert "already removed" in second.detail
    assert github.teams["acme/platform"] == {}


async def test_github_rate_limited_403_is_retried(github: FakeGitHub, github_executor: GitHubExecutor) -> None:
    github.fail_next(403, headers={"X-RateLimit-Remaining": "0", "Retry-After": "0"})
    github.fail_next(502)
    result = await github_executor.execute(command(TEAM, CommandAction.GRANT))
    assert result.status is ExecutionStatus.SUCCEEDED
    assert len(github.requests) == 3


async def test_github_plain_403_and_missing_team_are_final(github: FakeGitHub, github_executor: GitHubExecutor) -> None:
    github.fail_next(403)
    assert (await github_executor.execute(command(TEAM, CommandAction.GRANT))).status is ExecutionStatus.FAILED
    assert len(github.requests) == 1
    missing = key("github:user:alice-gh", "github:team:acme/nope", "member")
    result = await github_executor.execute(command(missing, CommandAction.GRANT))
    assert result.status is ExecutionStatus.FAILED
    assert "HTTP 404" in result.detail


async def test_connection_refused_is_retried_then_fails() -> None:
    executor = GitHubExecutor("http://127.0.0.1:9", SecretStr("t"), retry=FAST)
    try:
        result = await executor.execute(command(TEAM, CommandAction.GRANT))
    finally:
        await executor.close()
    assert result.status is ExecutionStatus.FAILED
    assert "gave up after 3 attempts" in result.detail


async def test_manual_executor_waits_for_attestation() -> None:
    result = await ManualExecutor().execute(
        command(key("vault:entity:e1", "vault:policy:prod-read", "attached"), CommandAction.REVOKE)
    )
    assert result.status is ExecutionStatus.AWAITING_ATTESTATION


def test_registry_sends_what_no_api_handles_to_manual(okta: FakeOkta) -> None:
    okta_executor = OktaExecutor("http://okta.invalid", SecretStr("t"))
    github_executor = GitHubExecutor("http://github.invalid", SecretStr("t"))
    manual = ManualExecutor()
    executors = Executors([okta_executor, github_executor], manual)
    assert executors.for_key(key()) is okta_executor
    assert executors.for_key(TEAM) is github_executor
    assert executors.for_key(key("okta:user:alice@example.com", "okta:app:0oa1app", "assigned")) is manual
    assert executors.for_key(key("github:user:alice-gh", "github:repo:acme/api", "write")) is manual
    assert executors.for_key(key("vault:entity:e1", "vault:policy:prod-read", "attached")) is manual
    assert executors.names == ["okta", "github", "manual"]


def test_retry_after_headers() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"X-Rate-Limit-Reset": "1010"}, now=1000.0) == 10.0
    assert retry_after_seconds({"X-RateLimit-Reset": "900"}, now=1000.0) == 0.0
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", "soon", "Wed, 99 Foo 2015", "9" * 5000])
def test_retry_after_that_is_no_number_of_seconds_is_ignored(value: str) -> None:
    assert retry_after_seconds({"Retry-After": value}) is None
    assert retry_after_seconds({"X-RateLimit-Reset": value}, now=1000.0) is None


def test_retry_after_is_never_negative() -> None:
    assert retry_after_seconds({"Retry-After": "-5"}) == 0.0


async def test_a_nan_retry_after_falls_back_to_the_backoff(okta: FakeOkta, okta_executor: OktaExecutor) -> None:
    okta.fail_next(429, times=2, headers={"Retry-After": "nan"})
    result = await okta_executor.execute(command(key(principal=f"okta:user:{ALICE_ID}"), CommandAction.GRANT))
    assert result.status is ExecutionStatus.SUCCEEDED
    assert len(okta.requests) == 3


async def test_a_huge_retry_after_is_capped_at_the_backoff_ceiling(okta: FakeOkta, okta_executor: OktaExecutor) -> None:
    okta.fail_next(429, times=1, headers={"Retry-After": "86400000"})
    result = await okta_executor.execute(command(key(principal=f"okta:user:{ALICE_ID}"), CommandAction.GRANT))
    assert result.status is ExecutionStatus.SUCCEEDED
