"""Safety at scale through Kafka: two workers never revoke the same entitlement twice, and a worker killed
in the middle of a sweep loses nothing and repeats nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from closeloop.contracts.commands import ProvisioningCommand
from closeloop.settings import DatabaseSettings, KafkaSettings
from tests.integration.expiry.harness import eventually, expiry_settings, read_commands, start_expiry
from tests.integration.expiry.helpers import bulk_seed, fresh_key
from tests.support.kafka_helpers import read_for

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]


def per_key(commands: list[ProvisioningCommand]) -> dict[str, list[ProvisioningCommand]]:
    grouped: dict[str, list[ProvisioningCommand]] = defaultdict(list)
    for command in commands:
        grouped[str(command.key)].append(command)
    return grouped


async def revoking(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM entitlements WHERE status = 'revoking'"))


async def test_two_workers_revoke_each_entitlement_exactly_once(
    kafka_settings: KafkaSettings, expiry_db: DatabaseSettings, pool: asyncpg.Pool, owner: asyncpg.Connection
) -> None:
    count = 2000
    settings = expiry_settings(sweep_batch_size=100, consume_triggers=False)
    keys = [fresh_key(f"twin{i}") for i in range(count)]
    expire_at = datetime.now(UTC) + timedelta(seconds=4)
    await bulk_seed(owner, keys, expires_at=expire_at, created_at=expire_at - timedelta(minutes=1))
    workers = await asyncio.gather(*(start_expiry(settings, kafka_settings, expiry_db) for _ in range(2)))
    try:
        await eventually(lambda: _all_revoking(pool, count), timeout_s=120)
        sent = await read_commands(
            kafka_settings, settings.commands_topic, until=lambda cs: len(per_key(cs)) >= count, timeout_s=120
        )
        sent += await _late(kafka_settings, settings.commands_topic)
    finally:
        for worker in workers:
            await worker.stop()
    grouped = per_key(sent)
    assert set(grouped) == {str(k) for k in keys}
    assert all(len(commands) == 1 for commands in grouped.values()), "an entitlement got more than one revoke"
    done_by = [
        int(w.service.context.metrics.actions.labels("expiry", "revoke_issued", "expiry")._value.get())
        for w in workers
        if w.service is not None
    ]
    assert sum(done_by) == count
    print(f"revokes per worker: {done_by}")


async def _all_revoking(pool: asyncpg.Pool, count: int) -> bool:
    outbox = await pool.fetchval("SELECT count(*) FROM outbox")
    return await revoking(pool) == count and outbox == 0


async def _late(kafka_settings: KafkaSettings, topic: str) -> list[ProvisioningCommand]:
    """Anything published after the first full read would be a duplicate: wait, then read everything again,
    and return only what the first read could not have seen (none expected)."""
    from tests.integration.expiry.harness import command_events

    records = await read_for(kafka_settings, topic, 1.5)
    everything = command_events(records)
    seen: set[str] = set()
    extra = []
    for command in everything:
        if command.key.principal in seen:
            extra.append(command)
        seen.add(command.key.principal)
    return extra


async def test_a_worker_killed_mid_sweep_is_finished_by_the_next_without_repeats(
    kafka_settings: KafkaSettings, expiry_db: DatabaseSettings, pool: asyncpg.Pool, owner: asyncpg.Connection
) -> None:
    count = 3000
    settings = expiry_settings(sweep_batch_size=50, consume_triggers=False)
    keys = [fresh_key(f"crash{i}") for i in range(count)]
    await bulk_seed(owner, keys, expires_at=datetime.now(UTC) - timedelta(minutes=1), created_at=datetime.now(UTC))

    env = {
        **os.environ,
        "CLOSELOOP_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "CLOSELOOP_DATABASE_URL": expiry_db.url.get_secret_value(),
        "CLOSELOOP_EXPIRY_COMMANDS_TOPIC": settings.commands_topic,
        "CLOSELOOP_EXPIRY_ENTITLEMENTS_TOPIC": settings.entitlements_topic,
        "CLOSELOOP_EXPIRY_TICKETS_TOPIC": settings.tickets_topic,
        "CLOSELOOP_EXPIRY_GRANTS_TOPIC": settings.grants_topic,
        "CLOSELOOP_EXPIRY_GROUP_ID": settings.group_id,
        "CLOSELOOP_EXPIRY_OPS_PORT": "0",
        "CLOSELOOP_EXPIRY_SWEEP_BATCH_SIZE": "50",
        "CLOSELOOP_EXPIRY_CONSUME_TRIGGERS": "false",
        "CLOSELOOP_EXPIRY_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(  # noqa: ASYNC220 - the worker must be a separate process to be killed
        [sys.executable, "-m", "expiry"], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 90
        while await revoking(pool) < 200:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "worker exited"
            assert time.monotonic() < deadline, "the first worker made no progress"
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        await asyncio.to_thread(process.wait)
        if process.stderr:
            process.stderr.close()
    at_kill = await revoking(pool)
    assert 0 < at_kill < count, f"the kill should land mid-sweep ({at_kill} of {count} revoked)"

    worker = await start_expiry(settings, kafka_settings, expiry_db)
    try:
        await eventually(lambda: _all_revoking(pool, count), timeout_s=120)
        sent = await read_commands(
            kafka_settings, settings.commands_topic, until=lambda cs: len(per_key(cs)) >= count, timeout_s=120
        )
    finally:
        await worker.stop()

    grouped = per_key(sent)
    assert set(grouped) == {str(k) for k in keys}
    # At least once on the wire (the relay may have been killed between publish and delete), but every copy
    # is the same command with the same event id, so consumers deduplicate it; never a second revoke.
    assert all(len({c.command_id for c in cs}) == 1 and len({c.event_id for c in cs}) == 1 for cs in grouped.values())
    repeated = await pool.fetch(
        "SELECT entity_key FROM audit_log WHERE action = 'revoke_issued' GROUP BY entity_key HAVING count(*) > 1"
    )
    assert repeated == []
    print(f"killed at {at_kill}/{count}; copies on the wire: {sum(len(cs) for cs in grouped.values()) - count}")
