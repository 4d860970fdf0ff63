"""A ServiceNow item whose approval arrives coalesced into state 2 is granted, expires and is revoked.

ServiceNow coalesces updates: the item is delivered as requested, then once as state 2 (Work in Progress)
with `approval=approved` and a 20-second duration. Request-intake publishes that as an `in_fulfilment`
transition; provisioning must read it as the approval, create the entitlement, and expiry must revoke it
when the 20 seconds are up. The item closing afterwards proves the same approval again: it grants nothing.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import pytest

from closeloop import kafka
from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementStatus, RevocationTrigger
from closeloop.contracts.grants import GrantAction, GrantEvent
from closeloop.contracts.identity import EntitlementKey
from closeloop.contracts.tickets import TicketTransition
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop_demo.payloads import servicenow_item
from tests.integration.expiry.harness import (
    command_events,
    eventually,
    expiry_settings,
    read_commands,
    start_expiry,
    start_provisioning,
)
from tests.integration.expiry.helpers import record_of
from tests.integration.provisioning.harness import producer_for
from tests.integration.request_intake.conftest import start_intake
from tests.integration.request_intake.helpers import post_standard, read_all, ticket_events

pytestmark = pytest.mark.integration


def ritm(sys_id: str, login: str, group: str, *, state: str, approval: str, mod: int) -> bytes:
    record = servicenow_item(
        sys_id=sys_id,
        number=f"RITM{sys_id[:7]}",
        table="sc_req_item",
        state=state,
        approval=approval,
        mod_count=mod,
        variables={
            "requested_for": login,
            "requested_for_kind": "human",
            "access_system": "okta",
            "request_kind": "access_request",
            "access_resource": f"okta:group:{group}",
            "access_privilege": "member",
            "access_duration": "PT20S",
            "access_owner": "platform.lead@example.com",
            "business_justification": "on-call rotation",
        },
        short_description=f"access_request for {login}",
    )
    return json.dumps(record).encode()


def at_source(key: EntitlementKey, action: GrantAction, command_id: str) -> GrantEvent:
    """What the Okta connector reports once the executor changed the membership."""
    event: GrantEvent = GrantEvent.create(
        occurred_at=datetime.now(UTC),
        source="okta://example.okta.com",
        correlation_id=f"okta-{command_id}",
        action=action,
        key=key,
        source_system="okta",
        vendor_event_id=f"okta-{action.value}-{command_id}",
        vendor_event_type="group.user_membership.add"
        if action is GrantAction.GRANT
        else "group.user_membership.remove",
        command_id=command_id,
    )
    return event


def for_key(
    commands: list[ProvisioningCommand], key: EntitlementKey, action: CommandAction
) -> list[ProvisioningCommand]:
    return [c for c in commands if c.key == key and c.action is action]


async def test_a_coalesced_approval_in_work_in_progress_grants_and_expiry_revokes_it(
    kafka_settings: KafkaSettings, expiry_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    settings = expiry_settings(sweep_interval_s=1.0)
    provisioning = await start_provisioning(settings, kafka_settings, expiry_db)
    expiry = await start_expiry(settings, kafka_settings, expiry_db)
    intake = await start_intake(kafka_settings, expiry_db, tickets_topic=settings.tickets_topic, mapping_file=None)
    sys_id = uuid.uuid4().hex
    login = f"dana-{sys_id[:6]}@example.com"
    group = f"00g{sys_id[:10]}"
    key = EntitlementKey(principal=f"okta:user:{login}", resource=f"okta:group:{group}", privilege="member")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            requested = await post_standard(
                http, intake, "servicenow", ritm(sys_id, login, group, state="1", approval="requested", mod=0)
            )
            coalesced = await post_standard(
                http, intake, "servicenow", ritm(sys_id, login, group, state="2", approval="approved", mod=1)
            )
        assert (requested.status, coalesced.status) == (202, 202), (requested.body, coalesced.body)
        published = ticket_events(await read_all(kafka_settings, settings.tickets_topic), sys_id)
        assert [e.transition for e in published] == [TicketTransition.REQUESTED, TicketTransition.IN_FULFILMENT]
        approval = published[-1]
        assert approval.requested_duration == timedelta(seconds=20)

        granted = await read_commands(
            kafka_settings, settings.commands_topic, until=lambda cs: bool(for_key(cs, key, CommandAction.GRANT))
        )
        (grant,) = for_key(granted, key, CommandAction.GRANT)
        pending = await record_of(pool, key)
        assert pending.status is EntitlementStatus.PENDING
        assert pending.expires_at == approval.occurred_at + timedelta(seconds=20)
        assert pending.approving_ticket is not None
        assert pending.approving_ticket.ticket_id == sys_id

        async with producer_for(kafka_settings) as producer:
            await kafka.publish(producer, settings.grants_topic, at_source(key, GrantAction.GRANT, grant.command_id))

            async def active() -> bool:
                return (await record_of(pool, key)).status is EntitlementStatus.ACTIVE

            await eventually(active, timeout_s=30)

            revoked = await read_commands(
                kafka_settings,
                settings.commands_topic,
                until=lambda cs: bool(for_key(cs, key, CommandAction.REVOKE)),
                timeout_s=90,
            )
            (revoke,) = for_key(revoked, key, CommandAction.REVOKE)
            assert revoke.reason is RevocationTrigger.EXPIRY
            assert pending.expires_at is not None
            assert revoke.occurred_at >= pending.expires_at
            await kafka.publish(producer, settings.grants_topic, at_source(key, GrantAction.REVOKE, revoke.command_id))

            async def revoked_at_source() -> bool:
                return (await record_of(pool, key)).status is EntitlementStatus.REVOKED

            await eventually(revoked_at_source, timeout_s=30)

        # The item closes: the same approval proved again, not a new one.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            closed = await post_standard(
                http, intake, "servicenow", ritm(sys_id, login, group, state="3", approval="approved", mod=2)
            )
        assert closed.status == 202, closed.body
        published = ticket_events(await read_all(kafka_settings, settings.tickets_topic), sys_id)
        assert published[-1].transition is TicketTransition.CLOSED_COMPLETE
        closing_event = published[-1].event_id

        async def closing_applied() -> bool:
            async with pool.acquire() as conn:
                found = await conn.fetchval("SELECT 1 FROM processed_events WHERE event_id = $1", closing_event)
            return found is not None

        await eventually(closing_applied, timeout_s=30)
        # A second grant would have moved the record on in the transaction that applied the closing.
        assert (await record_of(pool, key)).status is EntitlementStatus.REVOKED

        async def outbox_relayed() -> bool:
            async with pool.acquire() as conn:
                pending: int = await conn.fetchval("SELECT count(*) FROM outbox")
            return pending == 0

        await eventually(outbox_relayed, timeout_s=30)
        everything = command_events(await read_all(kafka_settings, settings.commands_topic))
        assert len(for_key(everything, key, CommandAction.GRANT)) == 1
        assert not provisioning.failures()
        assert not expiry.failures()
    finally:
        await intake.stop()
        await expiry.stop()
        await provisioning.stop()
