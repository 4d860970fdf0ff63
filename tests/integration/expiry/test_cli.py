"""`closeloop expiry ...` against a real database: recertification decisions and the repair sweep."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus
from closeloop.contracts.identity import EntitlementKey
from closeloop.record import EntitlementRecord, RecordTopics, repository
from closeloop.settings import DatabaseSettings
from expiry.cli import app
from expiry.clock import FakeClock
from tests.integration.expiry.helpers import fresh_key, seed, unique_topics

pytestmark = pytest.mark.integration


def run_cli(database: DatabaseSettings, topics: RecordTopics, *args: str) -> tuple[int, str]:
    env = {
        "CLOSELOOP_DATABASE_URL": database.url.get_secret_value(),
        "CLOSELOOP_EXPIRY_ENTITLEMENTS_TOPIC": topics.entitlements,
        "CLOSELOOP_EXPIRY_COMMANDS_TOPIC": topics.commands,
    }
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


async def _seed(database: DatabaseSettings, topics: RecordTopics, key: EntitlementKey, **fields: Any) -> None:
    pool = await asyncpg.create_pool(database.url.get_secret_value(), min_size=1, max_size=2)
    try:
        await seed(pool, key, FakeClock(datetime.now(UTC) - timedelta(days=1)), topics, **fields)
    finally:
        await pool.close()


async def _load(database: DatabaseSettings, key: EntitlementKey) -> tuple[EntitlementRecord | None, list[str]]:
    conn = await asyncpg.connect(database.url.get_secret_value())
    try:
        record = await repository.load(conn, key)
        evidence = [f"{e.decision}:{e.reviewer}" for e in await repository.recertifications_for(conn, key)]
        return record, evidence
    finally:
        await conn.close()


def test_recert_decide_records_evidence_and_revoke_revokes(expiry_db: DatabaseSettings) -> None:
    topics = unique_topics()
    kept, dropped = fresh_key("cli-kept"), fresh_key("cli-dropped")
    asyncio.run(_seed(expiry_db, topics, kept))
    asyncio.run(_seed(expiry_db, topics, dropped))

    code, output = run_cli(
        expiry_db, topics, "recert", "decide", str(kept), "--certify", "--reviewer", "mgr@example.com"
    )
    assert code == 0, output
    assert "certified" in output
    code, output = run_cli(
        expiry_db,
        topics,
        "recert",
        "decide",
        str(dropped),
        "--revoke",
        "--reviewer",
        "mgr@example.com",
        "--note",
        "left",
    )
    assert code == 0, output

    record, evidence = asyncio.run(_load(expiry_db, kept))
    assert record is not None
    assert record.last_change is EntitlementChange.RECERTIFIED
    assert evidence == ["certified:mgr@example.com"]
    record, evidence = asyncio.run(_load(expiry_db, dropped))
    assert record is not None
    assert record.status is EntitlementStatus.REVOKING
    assert evidence == ["revoked:mgr@example.com"]


def test_recert_decide_refuses_bad_input(expiry_db: DatabaseSettings) -> None:
    topics = unique_topics()
    code, _ = run_cli(expiry_db, topics, "recert", "decide", "not-a-key", "--certify", "--reviewer", "x")
    assert code != 0
    code, _ = run_cli(expiry_db, topics, "recert", "decide", str(fresh_key()), "--reviewer", "x")
    assert code != 0
    code, output = run_cli(expiry_db, topics, "recert", "decide", str(fresh_key()), "--certify", "--reviewer", "x")
    assert code == 1
    assert "unknown_entitlement" in output


def test_sweep_dry_run_changes_nothing_and_sweep_catches_up(expiry_db: DatabaseSettings) -> None:
    topics = unique_topics()
    key = fresh_key("cli-expired")
    asyncio.run(_seed(expiry_db, topics, key, expires_at=datetime.now(UTC) - timedelta(minutes=5)))

    code, output = run_cli(expiry_db, topics, "sweep", "--dry-run")
    assert code == 0, output
    assert "revoke (expiry)" in output
    code, output = run_cli(expiry_db, topics, "sweep", "--dry-run", "--json")
    assert code == 0, output
    plans = {plan["phase"]: plan for plan in json.loads(output)}
    assert any(plan["actions"].get("revoke (expiry)", 0) >= 1 for plan in plans.values())
    record, _ = asyncio.run(_load(expiry_db, key))
    assert record is not None
    assert record.status is EntitlementStatus.ACTIVE

    code, output = run_cli(expiry_db, topics, "sweep")
    assert code == 0, output
    record, _ = asyncio.run(_load(expiry_db, key))
    assert record is not None
    assert record.status is EntitlementStatus.REVOKING
    assert record.last_change is EntitlementChange.EXPIRED
