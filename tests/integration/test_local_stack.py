"""Tests of the local stack scripts themselves (deploy/local/stack.sh, `make up` / `make status`).

They run against the stack of $CLOSELOOP_STATE_DIR (default .closeloop/ at the repository root),
bringing it up first if needed (`up` is idempotent).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import stat
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK = REPO_ROOT / "deploy" / "local" / "stack.sh"
STATE = Path(os.environ.get("CLOSELOOP_STATE_DIR") or REPO_ROOT / ".closeloop").resolve()

ENV_KEYS = (
    "CLOSELOOP_KAFKA_BOOTSTRAP",
    "CLOSELOOP_DATABASE_URL",
    "CLOSELOOP_DATABASE_MIGRATE_URL",
    "CLOSELOOP_INTAKE_SERVICENOW_SECRET",
    "CLOSELOOP_INTAKE_GENERIC_SECRET",
    "CLOSELOOP_INTAKE_JIRA_SECRET",
    "CLOSELOOP_CONNECTORS_OKTA_SECRET",
    "CLOSELOOP_CONNECTORS_HOOK_SECRET",
    "CLOSELOOP_ALERTS_WEBHOOK_SECRET",
)
WHSEC_KEYS = (
    "CLOSELOOP_INTAKE_SERVICENOW_SECRET",
    "CLOSELOOP_INTAKE_GENERIC_SECRET",
    "CLOSELOOP_ALERTS_WEBHOOK_SECRET",
)
HEX_KEYS = ("CLOSELOOP_INTAKE_JIRA_SECRET", "CLOSELOOP_CONNECTORS_OKTA_SECRET", "CLOSELOOP_CONNECTORS_HOOK_SECRET")

INFRA = ("kafka", "postgres")
STATUS_LINE = re.compile(r"^(?P<name>\S+)\s+(?P<state>healthy|unhealthy|stopped)\s+(?P<addr>\S+)\s+pid (?P<pid>\d+|-)")


def _stack(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # Only the infrastructure: the services of services.list are not part of these tests.
    env = {**os.environ, "CLOSELOOP_STATE_DIR": str(STATE), "CLOSELOOP_SERVICES": "none"}
    return subprocess.run(
        ["bash", str(STACK), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _status() -> tuple[int, dict[str, dict[str, str]]]:
    result = _stack("status", timeout=60)
    components = {}
    for line in result.stdout.splitlines():
        match = STATUS_LINE.match(line)
        if match:
            components[match["name"]] = match.groupdict()
    return result.returncode, components


def _read_env() -> dict[str, str]:
    values = {}
    for line in (STATE / "env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


@pytest.fixture(scope="module", autouse=True)
def stack_up() -> None:
    _, components = _status()
    if any(components.get(name, {}).get("state") != "healthy" for name in INFRA):
        result = _stack("up")
        assert result.returncode == 0, f"stack.sh up failed:\n{result.stdout}\n{result.stderr}"


def test_status_reports_kafka_and_postgres_healthy() -> None:
    _, components = _status()

    for name in INFRA:
        assert components[name]["state"] == "healthy"
        assert components[name]["pid"].isdigit()
    assert components["kafka"]["addr"] == _read_env()["CLOSELOOP_KAFKA_BOOTSTRAP"]
    assert components["postgres"]["addr"].startswith("127.0.0.1:")


def test_up_again_is_a_noop_that_keeps_the_same_processes() -> None:
    _, before = _status()

    result = _stack("up")

    assert result.returncode == 0, result.stderr
    assert "kafka: already running" in result.stdout
    assert "postgres: already running" in result.stdout
    _, after = _status()
    assert {n: after[n]["pid"] for n in INFRA} == {n: before[n]["pid"] for n in INFRA}
    assert all(after[n]["state"] == "healthy" for n in INFRA)


def test_env_file_is_private_and_complete_with_well_formed_stable_secrets() -> None:
    env_path = STATE / "env"
    before = _read_env()

    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((STATE / "secrets").stat().st_mode) == 0o700
    assert set(ENV_KEYS) <= before.keys()
    for key in WHSEC_KEYS:
        assert before[key].startswith("whsec_"), key
        assert len(base64.b64decode(before[key].removeprefix("whsec_"), validate=True)) == 32, key
    for key in HEX_KEYS:
        assert re.fullmatch(r"[0-9a-f]{64}", before[key]), key
    assert re.fullmatch(
        r"postgresql://closeloop_app:[0-9a-f]+@127\.0\.0\.1:\d+/closeloop", before["CLOSELOOP_DATABASE_URL"]
    )
    assert re.fullmatch(
        r"postgresql://closeloop_migrator:[0-9a-f]+@127\.0\.0\.1:\d+/closeloop",
        before["CLOSELOOP_DATABASE_MIGRATE_URL"],
    )

    assert _stack("env", timeout=60).returncode == 0
    assert _read_env() == before  # generated once, kept across runs


async def test_database_roles_are_least_privilege() -> None:
    env = _read_env()
    app = await asyncpg.connect(env["CLOSELOOP_DATABASE_URL"])
    try:
        role = await app.fetchrow(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        assert role is not None
        assert (role["rolsuper"], role["rolcreatedb"], role["rolcreaterole"]) == (False, False, False)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("CREATE TABLE closeloop_stack_probe (x int)")
    finally:
        await app.close()

    migrator = await asyncpg.connect(env["CLOSELOOP_DATABASE_MIGRATE_URL"])
    try:
        owners = await migrator.fetchrow(
            "SELECT (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()) AS db,"
            " (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public') AS schema,"
            " (SELECT rolcreaterole AND NOT rolsuper FROM pg_roles WHERE rolname = current_user) AS createrole"
        )
        assert owners is not None
        assert dict(owners) == {"db": "closeloop_migrator", "schema": "closeloop_migrator", "createrole": True}
    finally:
        await migrator.close()


async def test_kafka_round_trip_with_the_python_client() -> None:
    bootstrap = _read_env()["CLOSELOOP_KAFKA_BOOTSTRAP"]
    topic = f"stack-probe-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1, topic_configs={"cleanup.policy": "compact"})])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for i in range(6):
                await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i}".encode())
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"{topic}-group",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            received: list[bytes] = []
            deadline = time.monotonic() + 60
            while len(received) < 6 and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                received += [m.value for msgs in batches.values() for m in msgs if m.value is not None]
            await consumer.commit()
            committed = {tp: await consumer.committed(tp) for tp in consumer.assignment()}
        finally:
            await consumer.stop()

        assert sorted(received) == [f"v{i}".encode() for i in range(6)]
        assert sum(offset or 0 for offset in committed.values()) == 6
    finally:
        await asyncio.wait_for(admin.delete_topics([topic]), 30)
        await admin.close()
