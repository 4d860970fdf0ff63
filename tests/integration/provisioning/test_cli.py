"""The operator CLI as an operator runs it (a subprocess, configured by environment only)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from datetime import UTC, datetime, timedelta

import pytest

from closeloop.contracts.entitlements import EntitlementStatus
from closeloop.contracts.tickets import TicketKind
from closeloop.record import RecordTopics
from provisioning.activate_entitlement import activate_entitlement
from provisioning.context import Provisioning
from provisioning.create_entitlement import create_entitlement
from provisioning.policy import Policy
from provisioning.request_revocation import request_revocation
from tests.integration.provisioning.conftest import RecordDb
from tests.unit.provisioning.factories import grant, key, ticket

pytestmark = pytest.mark.integration

ALICE = key()
VAULT = key("vault:entity:e-7", "vault:policy:prod-read", "attached")


async def closeloop(db: RecordDb, *args: str, extra_env: dict[str, str] | None = None) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "CLOSELOOP_DATABASE_URL": db.settings.url.get_secret_value(),
        "COLUMNS": "250",
        **(extra_env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from provisioning.cli import app; app(prog_name='closeloop')",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def seeded(record_db: RecordDb) -> RecordDb:
    ctx = Provisioning(
        pool=record_db.app, policy=Policy.load(), topics=RecordTopics(entitlements="c.e", commands="c.c")
    )
    now = datetime.now(UTC)
    await create_entitlement(ticket(ALICE, occurred_at=now, ticket_number="RITM0000101"), ctx)
    await activate_entitlement(grant(ALICE), ctx)
    await create_entitlement(ticket(VAULT, occurred_at=now, ticket_number="RITM0000102"), ctx)
    return record_db


async def test_entitlements_list_and_show(seeded: RecordDb) -> None:
    code, out, _ = await closeloop(seeded, "entitlements", "list", "--json")
    assert code == 0
    listed = {f"{r['key']['principal']}|{r['key']['resource']}|{r['key']['privilege']}": r for r in json.loads(out)}
    assert listed[str(ALICE)]["status"] == "active"
    assert listed[str(ALICE)]["owner"] == "bob.manager@example.com"
    assert listed[str(VAULT)]["status"] == "pending"
    code, out, _ = await closeloop(
        seeded, "entitlements", "list", "--status", "active", "--ticket", "RITM0000101", "--json"
    )
    assert [r["status"] for r in json.loads(out)] == ["active"]
    # Piped to a narrow reader: tab-separated, every value whole (a table would cut them at 40 columns).
    code, out, _ = await closeloop(seeded, "entitlements", "list", extra_env={"COLUMNS": "40"})
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out), delimiter="\t"))
    alice = next(r for r in rows if r["ticket"] == "RITM0000101")
    assert (alice["principal"], alice["resource"], alice["privilege"]) == (
        ALICE.principal,
        ALICE.resource,
        ALICE.privilege,
    )
    assert alice["owner"] == "bob.manager@example.com"

    code, out, _ = await closeloop(seeded, "entitlements", "show", str(ALICE), "--json")
    shown = json.loads(out)
    assert shown["record"]["tickets"][0]["ticket_number"] == "RITM0000101"
    assert [h["action"] for h in shown["history"]] == ["requested", "grant_issued", "activated"]
    code, out, _ = await closeloop(seeded, "entitlements", "show", str(ALICE), extra_env={"COLUMNS": "40"})
    assert code == 0
    assert "activated" in out
    assert "owner: bob.manager@example.com" in out.splitlines()
    code, _, _ = await closeloop(seeded, "entitlements", "show", "okta:user:nobody@example.com|okta:group:x1|member")
    assert code == 1


async def test_evidence_export_csv_and_json(seeded: RecordDb) -> None:
    code, out, err = await closeloop(seeded, "evidence", "export", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["entitlement_key"], r["approving_ticket"], r["status"]) for r in rows] == [
        (str(ALICE), "RITM0000101", "active")
    ]
    assert "audit chain verified" in err
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    code, out, _ = await closeloop(seeded, "evidence", "export", "--format", "json", "--at", yesterday)
    document = json.loads(out)
    assert document["entitlements"] == []
    assert document["audit_chain"]["ok"] is True
    code, out, _ = await closeloop(seeded, "evidence", "export", "--format", "json", "--all-statuses")
    assert {r["status"] for r in json.loads(out)["entitlements"]} == {"active", "pending"}
    code, _, err = await closeloop(seeded, "evidence", "export", "--format", "xml")
    assert code != 0


async def test_manual_pending_and_attest(seeded: RecordDb) -> None:
    ctx = Provisioning(pool=seeded.app, policy=Policy.load(), topics=RecordTopics(entitlements="c.e", commands="c.c"))
    await activate_entitlement(grant(VAULT), ctx)
    await request_revocation(ticket(VAULT, kind=TicketKind.REVOCATION_REQUEST), ctx)
    async with seeded.app.acquire() as conn:  # what the executor runner records for a manual command
        command = await conn.fetchrow("SELECT value FROM outbox WHERE topic = 'c.c' ORDER BY id DESC LIMIT 1")
        assert command is not None
        issued = json.loads(command["value"])
        await conn.execute(
            "INSERT INTO command_executions (command_id, entitlement_key, action, target_system, executor, status,"
            " correlation_id) VALUES ($1, $2, 'revoke', 'vault', 'manual', 'awaiting_attestation', $3)",
            issued["command_id"],
            str(VAULT),
            issued["correlation_id"],
        )
    code, out, _ = await closeloop(seeded, "manual", "pending", "--json")
    assert [r["command_id"] for r in json.loads(out)] == [issued["command_id"]]
    code, out, _ = await closeloop(seeded, "manual", "pending", extra_env={"COLUMNS": "40"})
    [pending] = list(csv.DictReader(io.StringIO(out), delimiter="\t"))
    assert (pending["command_id"], pending["entitlement_key"]) == (issued["command_id"], str(VAULT))
    env = {"CLOSELOOP_PROVISIONING_GRANTS_TOPIC": "c.grants"}
    code, out, err = await closeloop(
        seeded, "attest", issued["command_id"], "--by", "dba@example.com", "--evidence", "CHG0042", extra_env=env
    )
    assert code == 0, err
    assert "c.grants" in out
    async with seeded.app.acquire() as conn:
        queued = await conn.fetchrow("SELECT key, value FROM outbox WHERE topic = 'c.grants'")
    assert queued is not None
    attestation = json.loads(queued["value"])
    assert (attestation["action"], attestation["command_id"], attestation["actor"]["id"]) == (
        "revoke",
        issued["command_id"],
        "dba@example.com",
    )
    assert queued["key"] == str(VAULT).encode()
    code, out, _ = await closeloop(
        seeded, "attest", issued["command_id"], "--by", "x", "--evidence", "y", extra_env=env
    )
    assert code == 1
    assert "already" in out
    async with seeded.app.acquire() as conn:  # confirmed only once the service consumes the attestation
        status = await conn.fetchval("SELECT status FROM entitlements WHERE key = $1", str(VAULT))
    assert status == EntitlementStatus.REVOKING.value
