"""The executor runner's bookkeeping: redeliveries are not run twice, re-sent attempts are, attested
manual commands are final, failures are recorded with their reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from closeloop.contracts.commands import CommandAction, ProvisioningCommand
from closeloop.contracts.entitlements import EntitlementStatus, RevocationTrigger
from closeloop.contracts.identity import EntitlementKey
from closeloop.record import Cause, EntitlementRecord, RecordTopics
from provisioning.attest_command import attest_command
from provisioning.context import Outcome
from provisioning.execute_command import ExecutorContext, execute_command
from provisioning.executors import Executors, ManualExecutor, OktaExecutor
from provisioning.executors.http import RetryPolicy
from tests.integration.provisioning.conftest import RecordDb
from tests.unit.provisioning.factories import key
from tests.unit.provisioning.fake_apis import FakeOkta

pytestmark = pytest.mark.integration

ALICE_ID = "00u1alice0000000000a"
GROUP = "00g1engreaders"


def command(
    action: CommandAction = CommandAction.REVOKE, entitlement: EntitlementKey | None = None
) -> ProvisioningCommand:
    now = datetime.now(UTC)
    record = EntitlementRecord.new(
        entitlement or key(), status=EntitlementStatus.REVOKING, version=3, created_at=now, updated_at=now
    )
    return record.command(action, RevocationTrigger.TICKET, cause=Cause.new(), actor="test")


@pytest.fixture
async def okta() -> AsyncIterator[FakeOkta]:
    fake = await FakeOkta(users={"alice@example.com": ALICE_ID}, groups={GROUP: {ALICE_ID}}).start_okta()
    yield fake
    await fake.stop()


@pytest.fixture
async def runner(okta: FakeOkta, record_db: RecordDb) -> AsyncIterator[ExecutorContext]:
    executors = Executors(
        [OktaExecutor(okta.url, SecretStr(okta.token), RetryPolicy(max_attempts=2, backoff_base_s=0.01))],
        ManualExecutor(),
    )
    yield ExecutorContext(record_db.app, executors)
    await executors.close()


async def execution(db: RecordDb, command_id: str) -> tuple[str, int, str]:
    async with db.app.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, attempt, detail FROM command_executions WHERE command_id = $1", command_id
        )
    assert row is not None
    return row["status"], row["attempt"], row["detail"]


async def test_redelivery_is_not_run_twice_but_a_resend_is(
    okta: FakeOkta, runner: ExecutorContext, record_db: RecordDb
) -> None:
    revoke = command()
    assert (await execute_command(revoke, runner)).outcome is Outcome.APPLIED
    deletes = [r for r in okta.requests if r.method == "DELETE"]
    assert len(deletes) == 1
    assert (await execute_command(revoke, runner)).outcome is Outcome.DUPLICATE
    assert len([r for r in okta.requests if r.method == "DELETE"]) == 1
    okta.groups[GROUP].add(ALICE_ID)  # someone put it back before the source confirmed the removal
    resend = revoke.model_copy(update={"attempt": 2, "event_id": "resend-2"})
    assert (await execute_command(resend, runner)).outcome is Outcome.APPLIED
    assert okta.groups[GROUP] == set()
    assert await execution(record_db, revoke.command_id) == ("succeeded", 2, "removed from the group")


async def test_failures_are_recorded_with_the_reason(
    okta: FakeOkta, runner: ExecutorContext, record_db: RecordDb
) -> None:
    okta.fail_next(503, times=4)
    grant = command(CommandAction.GRANT, key(f"okta:user:{ALICE_ID}"))
    result = await execute_command(grant, runner)
    assert result.why is not None
    assert result.why.startswith("failed: gave up after 2 attempts")
    status, attempt, detail = await execution(record_db, grant.command_id)
    assert (status, attempt) == ("failed", 1)
    assert "HTTP 503" in detail
    assert okta.token not in detail


async def test_an_attested_manual_command_is_final(runner: ExecutorContext, record_db: RecordDb) -> None:
    manual = command(entitlement=key("vault:entity:e-1", "vault:policy:p", "attached"))
    assert (await execute_command(manual, runner)).why == "awaiting_attestation"
    resent = manual.model_copy(update={"attempt": 2, "event_id": "resend-2"})
    assert (await execute_command(resent, runner)).why == "awaiting_attestation"  # the reminder goes out again
    assert (await execution(record_db, manual.command_id))[:2] == ("awaiting_attestation", 2)
    await attest_command(
        record_db.app,
        RecordTopics(grants="g"),
        manual.command_id,
        attested_by="ops@example.com",
        evidence="done",
        attested_at=datetime.now(UTC),
    )
    third = manual.model_copy(update={"attempt": 3, "event_id": "resend-3"})
    assert (await execute_command(third, runner)).outcome is Outcome.DUPLICATE
    assert (await execution(record_db, manual.command_id))[:2] == ("attested", 2)
