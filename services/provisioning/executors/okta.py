"""Okta: group membership through the Groups API.

    PUT    /api/v1/groups/{groupId}/users/{userId}   (204: member, also when already a member)
    DELETE /api/v1/groups/{groupId}/users/{userId}   (204: removed; 404: already gone)
    GET    /api/v1/users/{login}                     (resolve a login to the user id)

Authorization is `SSWS <API token>`. Handles `okta:user:<login or id>` / `okta:group:<groupId>` /
`member`; app assignments and admin roles go to the manual executor.
"""

from __future__ import annotations

from pydantic import SecretStr

from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.identity import EntitlementKey, split_ref
from closeloop.record.confirmation import api_executor_for
from provisioning.executors.base import Execution, Executor
from provisioning.executors.http import HttpCallFailed, RetryingHttp, RetryPolicy
from provisioning.executors.vendor_ids import OKTA_OBJECT_ID, InvalidVendorId, okta_object_id, okta_user, segment


class OktaExecutor(Executor):
    name = "okta"

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._http = RetryingHttp(
            base_url,
            {
                "Authorization": f"SSWS {token.get_secret_value()}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "closeloop-provisioning",
            },
            retry,
        )

    def supports(self, key: EntitlementKey) -> bool:
        return api_executor_for(key) == self.name

    async def execute(self, command: ProvisioningCommand) -> Execution:
        try:
            group_id = okta_object_id(split_ref(command.key.resource)[2], "Okta group id")
            user = okta_user(split_ref(command.key.principal)[2])
        except InvalidVendorId as exc:
            return Execution.failed(f"refused before any request: {exc}")
        revoke = command.action is CommandAction.REVOKE
        try:
            user_id = await self._user_id(user)
            if user_id is None:
                if revoke:
                    return Execution.succeeded(f"Okta has no user {user}: nothing to remove")
                return Execution.failed(f"Okta has no user {user}")
            path = f"/api/v1/groups/{segment(group_id)}/users/{segment(user_id)}"
            if revoke:
                response = await self._http.request("DELETE", path, ok=(204, 200), accept=(404,))
                if response.status == 404:
                    return Execution.succeeded("not a member (already removed)")
                return Execution.succeeded("removed from the group")
            await self._http.request("PUT", path, ok=(204, 200))
            return Execution.succeeded("added to the group")
        except (HttpCallFailed, InvalidVendorId) as exc:
            return Execution.failed(str(exc))

    async def _user_id(self, user: str) -> str | None:
        if OKTA_OBJECT_ID.fullmatch(user):
            return user
        response = await self._http.request("GET", f"/api/v1/users/{segment(user)}", ok=(200,), accept=(404,))
        if response.status == 404 or not isinstance(response.body, dict):
            return None
        user_id = response.body.get("id")
        # The id goes into the next path: it must be an Okta id, whatever the server answered.
        return okta_object_id(str(user_id), "Okta user id") if user_id else None

    async def close(self) -> None:
        await self._http.close()
