"""The five stories: what the demo does as ServiceNow and as the IAM systems, and which alerts it expects."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from closeloop.contracts.alerts import DriftAlert, DriftRule
from closeloop.contracts.identity import EntitlementKey
from closeloop_demo import payloads as vendor
from closeloop_demo.senders import Senders
from closeloop_demo.watch import Observed, TopicWatcher

STEP_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Expectation:
    story: str
    rule: DriftRule | None  # None: the story must end with no open alert on the key
    key_contains: str

    def met(self, observed: Observed) -> bool:
        matching = [a for a in observed.alerts if self.key_contains in a.entitlement_key]
        if self.rule is None:
            return not open_rules(matching)
        return any(a.rule == self.rule for a in matching)


def open_rules(alerts: list[DriftAlert]) -> set[DriftRule]:
    """Rules whose latest alert record for a key is not a Close."""
    latest = {}
    for alert in alerts:
        latest[(alert.entitlement_key, alert.rule)] = alert
    return {rule for (_, rule), alert in latest.items() if alert.activity.name != "CLOSE"}


def _key_of(payload: dict[str, Any]) -> str:
    return str(EntitlementKey(**payload["key"]))


def command_for(key: EntitlementKey, action: str) -> Callable[[Observed], bool]:
    wanted = str(key)
    return lambda seen: any(c.get("action") == action and _key_of(c) == wanted for c in seen.commands)


def record_status(key: EntitlementKey, status: str) -> Callable[[Observed], bool]:
    wanted = str(key)
    return lambda seen: any(r.get("status") == status and _key_of(r) == wanted for r in seen.records)


class Stories:
    def __init__(self, senders: Senders, watcher: TopicWatcher, console: Console, run_id: str) -> None:
        self.send = senders
        self.watch = watcher
        self.console = console
        self.run = run_id
        self.principals: list[str] = []

    def say(self, story: str, text: str) -> None:
        self.console.print(f"[bold cyan]{story:>13}[/] {text}", highlight=False)

    async def until(self, story: str, what: str, predicate: Callable[[Observed], bool]) -> None:
        if not await self.watch.wait_for(predicate, STEP_TIMEOUT_S):
            raise TimeoutError(f"{story}: gave up waiting for {what}")
        self.say(story, f"[green]✓[/] {what}")

    def person(self, name: str) -> tuple[str, str]:
        login = f"{name}.{self.run}@example.com"
        self.principals.append(f"okta:user:{login}")
        return login, f"00u{name[:4]}{self.run}"

    def ritm(
        self,
        number: str,
        sys_id: str,
        login: str,
        group: str,
        *,
        state: str,
        approval: str,
        stage: str,
        mod: int,
        kind: str = "access_request",
        duration: str | None = None,
    ) -> dict[str, Any]:
        variables = {
            "requested_for": login,
            "requested_for_kind": "human",
            "access_system": "okta",
            "request_kind": kind,
            "access_owner": "platform.lead@example.com",
            "business_justification": "demo",
        }
        if kind != "offboarding":
            variables.update({"access_resource": f"okta:group:{group}", "access_privilege": "member"})
        if duration:
            variables["access_duration"] = duration
        return vendor.servicenow_item(
            sys_id=sys_id,
            number=number,
            table="sc_req_item",
            state=state,
            approval=approval,
            stage=stage,
            mod_count=mod,
            variables=variables,
            short_description=f"{kind} for {login}",
        )

    def approved_item(self, number: str, sys_id: str, login: str, group: str, **options: str) -> dict[str, Any]:
        """A requested item in fulfilment after its approval (revision 1)."""
        return self.ritm(
            number, sys_id, login, group, state="1", approval="approved", stage="fulfillment", mod=1, **options
        )

    def closed_item(self, number: str, sys_id: str, login: str, group: str, **options: str) -> dict[str, Any]:
        """The same item closed complete (revision 2)."""
        return self.ritm(
            number, sys_id, login, group, state="3", approval="approved", stage="complete", mod=2, **options
        )

    async def grant_via_ticket(
        self, story: str, number: str, name: str, group: str, duration: str
    ) -> tuple[EntitlementKey, str, str, str]:
        login, user_id = self.person(name)
        key = EntitlementKey(principal=f"okta:user:{login}", resource=f"okta:group:{group}", privilege="member")
        sys_id = vendor.new_sys_id()
        await self.send.servicenow(self.approved_item(number, sys_id, login, group, duration=duration))
        self.say(story, f"ServiceNow {number} approved: {login} → Okta group {group} for {duration}")
        await self.until(story, "provisioning issued the grant command", command_for(key, "grant"))
        await self.send.okta(vendor.okta_hook([vendor.okta_group_membership("add", login, user_id, group, group)]))
        self.say(story, "Okta reports the group membership (event hook)")
        await self.until(story, "record: active, linked to the ticket", record_status(key, "active"))
        return key, login, user_id, sys_id

    async def ttl_expiry(self) -> list[Expectation]:
        story = "1 ttl"
        group = f"00gdemoeng{self.run}"
        key, login, user_id, sys_id = await self.grant_via_ticket(story, f"RITM9{self.run}1", "alice", group, "PT20S")
        await self.send.servicenow(self.closed_item(f"RITM9{self.run}1", sys_id, login, group, duration="PT20S"))
        self.say(story, "ServiceNow ticket closed complete; the access lives on until its TTL")
        await self.until(story, "expiry: TTL passed, revoke command issued", command_for(key, "revoke"))
        await self.send.okta(vendor.okta_hook([vendor.okta_group_membership("remove", login, user_id, group, group)]))
        self.say(story, "Okta reports the membership removed")
        await self.until(story, "record: revoked, verified at the source", record_status(key, "revoked"))
        return [Expectation(story, None, str(key))]

    async def unticketed_admin(self) -> list[Expectation]:
        story = "2 unticketed"
        user = f"mallory-{self.run}"
        arn = f"arn:aws:iam::{vendor.AWS_ACCOUNT}:user/{user}"
        self.principals.append(f"aws:user:{arn}")
        await self.send.cloudtrail(
            vendor.cloudtrail_attach_user_policy(user, "arn:aws:iam::aws:policy/AdministratorAccess")
        )
        self.say(story, f"CloudTrail: AttachUserPolicy AdministratorAccess to {user}, no ticket anywhere")
        return [Expectation(story, DriftRule.UNTICKETED_GRANT, f"aws:user:{arn}|")]

    async def offboarding_not_removed(self) -> list[Expectation]:
        story = "3 offboarding"
        group = f"00gdemoops{self.run}"
        key, login, _, _ = await self.grant_via_ticket(story, f"RITM9{self.run}3", "dave", group, "P30D")
        # ServiceNow stamps records to the second: leave that second behind so the offboarding is seen
        # to come after the grant (in real life it comes weeks later).
        await asyncio.sleep(1.5)
        sys_id = vendor.new_sys_id()
        number = f"RITM9{self.run}4"
        await self.send.servicenow(self.approved_item(number, sys_id, login, group, kind="offboarding"))
        await self.send.servicenow(self.closed_item(number, sys_id, login, group, kind="offboarding"))
        self.say(story, f"ServiceNow offboarding {number} for {login} closed complete; Okta still has the member")
        return [Expectation(story, DriftRule.CLOSED_NOT_REMOVED, str(key))]

    async def ownerless_nhi(self) -> list[Expectation]:
        story = "4 nhi"
        token_id = f"00Tdemo{self.run}"
        self.principals.append(f"okta:apitoken:{token_id}")
        await self.send.okta(vendor.okta_hook([vendor.okta_api_token_created(token_id, f"deploy-bot-{self.run}")]))
        self.say(story, f"Okta: API token {token_id} created for a deploy bot, no owner recorded")
        return [Expectation(story, DriftRule.NO_OWNER, f"okta:apitoken:{token_id}|")]

    async def break_glass(self) -> list[Expectation]:
        story = "5 break-glass"
        login, user_id = self.person("erin")
        group = f"00gdemoprod{self.run}"
        key = EntitlementKey(principal=f"okta:user:{login}", resource=f"okta:group:{group}", privilege="member")
        now = datetime.now(UTC)
        window_end = now + timedelta(seconds=12)
        incident = vendor.servicenow_item(
            sys_id=vendor.new_sys_id(),
            number=f"INC9{self.run}5",
            table="incident",
            state="2",
            mod_count=1,
            short_description="Payments outage: emergency admin access",
            variables={
                "requested_for": login,
                "access_system": "okta",
                "access_resource": f"okta:group:{group}",
                "access_privilege": "member",
                "request_kind": "break-glass",
                "window_start": now.strftime("%Y-%m-%d %H:%M:%S"),
                "window_end": window_end.strftime("%Y-%m-%d %H:%M:%S"),
                "access_owner": "sre.lead@example.com",
                "business_justification": "restore payment webhooks",
            },
        )
        # The incident commander's approval is what makes the emergency access an explicit exception.
        incident["approvers"] = [
            {
                "sys_id": vendor.new_sys_id(),
                "approver": {"link": f"{vendor.SERVICENOW_INSTANCE}/api/now/table/sys_user/ic", "value": "ic"},
                "approver.email": "incident.commander@example.com",
                "state": "approved",
                "sys_updated_on": now.strftime("%Y-%m-%d %H:%M:%S"),
            }
        ]
        await self.send.servicenow(incident)
        self.say(story, f"ServiceNow INC9{self.run}5: break-glass for {login} until {window_end:%H:%M:%S} UTC")
        await self.until(story, "provisioning issued the grant command", command_for(key, "grant"))
        await self.send.okta(vendor.okta_hook([vendor.okta_group_membership("add", login, user_id, group, group)]))
        self.say(story, "Okta reports the emergency membership; nobody removes it after the incident")
        return [Expectation(story, DriftRule.EXCEPTION_EXPIRED, str(key))]

    def all(self) -> list[Callable[[], Awaitable[list[Expectation]]]]:
        return [
            self.ttl_expiry,
            self.unticketed_admin,
            self.offboarding_not_removed,
            self.ownerless_nhi,
            self.break_glass,
        ]


async def play(stories: Stories) -> tuple[list[Expectation], list[str]]:
    """Run every story at once; return the expectations and the stories that failed to play."""
    results = await asyncio.gather(*(story() for story in stories.all()), return_exceptions=True)
    expectations: list[Expectation] = []
    failures: list[str] = []
    for result in results:
        if isinstance(result, BaseException):
            failures.append(str(result))
        else:
            expectations.extend(result)
    return expectations, failures
