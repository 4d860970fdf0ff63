"""GitHub: team membership through the Teams API.

    PUT    /orgs/{org}/teams/{team_slug}/memberships/{username}   body {"role": "member"|"maintainer"}
           (200: active, or pending until the user accepts the org invitation)
    DELETE /orgs/{org}/teams/{team_slug}/memberships/{username}   (204: removed; 404: already gone)

Bearer token, `X-GitHub-Api-Version`. Handles `github:user:<login>` / `github:team:<org>/<slug>` /
`member` or `maintainer`; org and repository permissions go to the manual executor.
"""

from __future__ import annotations

from pydantic import SecretStr

from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.identity import EntitlementKey, split_ref
from closeloop.record.confirmation import api_executor_for
from provisioning.executors.base import Execution, Executor
from provisioning.executors.http import HttpCallFailed, RetryingHttp, RetryPolicy
from provisioning.executors.vendor_ids import InvalidVendorId, github_login, github_team, segment


class GitHubExecutor(Executor):
    name = "github"

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        api_version: str = "2022-11-28",
        retry: RetryPolicy | None = None,
    ) -> None:
        self._http = RetryingHttp(
            base_url,
            {
                "Authorization": f"Bearer {token.get_secret_value()}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": api_version,
                "User-Agent": "closeloop-provisioning",
            },
            retry,
        )

    def supports(self, key: EntitlementKey) -> bool:
        return api_executor_for(key) == self.name

    async def execute(self, command: ProvisioningCommand) -> Execution:
        try:
            org, slug = github_team(split_ref(command.key.resource)[2])
            username = github_login(split_ref(command.key.principal)[2])
        except InvalidVendorId as exc:
            return Execution.failed(f"refused before any request: {exc}")
        path = f"/orgs/{segment(org)}/teams/{segment(slug)}/memberships/{segment(username)}"
        try:
            if command.action is CommandAction.REVOKE:
                response = await self._http.request(
                    "DELETE", path, ok=(204,), accept=(404,), retry_forbidden_when_limited=True
                )
                if response.status == 404:
                    return Execution.succeeded("not a team member (already removed)")
                return Execution.succeeded("removed from the team")
            response = await self._http.request(
                "PUT", path, json={"role": command.key.privilege}, ok=(200,), retry_forbidden_when_limited=True
            )
            state = response.body.get("state") if isinstance(response.body, dict) else None
            if state == "pending":
                return Execution.succeeded("team membership pending until the user accepts the org invitation")
            return Execution.succeeded(f"team membership {state or 'active'} as {command.key.privilege}")
        except HttpCallFailed as exc:
            return Execution.failed(str(exc))

    async def close(self) -> None:
        await self._http.close()
