"""A provisioning command: carry it out with the executor for its entitlement, once.

Executors deduplicate on (`command_id`, `attempt`) through `command_executions`: a redelivered command
is not run again; a re-sent one (same id, higher attempt: the source has not confirmed it yet) is run
again, since every executor is idempotent, unless a person already attested it. The call and its
bookkeeping cannot share a transaction with the IAM API, so a crash between them runs the (idempotent)
call again on redelivery.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from closeloop.contracts.commands import ProvisioningCommand
from closeloop.logging import get_logger
from provisioning.context import Outcome, Result
from provisioning.executors import ExecutionStatus, Executors

log = get_logger(__name__)


@dataclass(frozen=True)
class ExecutorContext:
    pool: asyncpg.Pool
    executors: Executors


async def execute_command(command: ProvisioningCommand, ctx: ExecutorContext) -> Result:
    async with ctx.pool.acquire() as conn:
        prior = await conn.fetchrow(
            "SELECT status, attempt FROM command_executions WHERE command_id = $1", command.command_id
        )
    if prior is not None and (prior["attempt"] >= command.attempt or prior["status"] == "attested"):
        return Result.duplicate()
    executor = ctx.executors.for_key(command.key)
    execution = await executor.execute(command)
    log.info(
        "command executed",
        command_id=command.command_id,
        action=command.action.value,
        entitlement=str(command.key),
        executor=executor.name,
        status=execution.status.value,
        detail=execution.detail,
    )
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO command_executions (command_id, entitlement_key, action, target_system, executor, attempt,"
            " status, detail, ticket, correlation_id, confirm_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)"
            " ON CONFLICT (command_id) DO UPDATE SET executor = EXCLUDED.executor, attempt = EXCLUDED.attempt,"
            " status = EXCLUDED.status, detail = EXCLUDED.detail, confirm_by = EXCLUDED.confirm_by, updated_at = now()"
            " WHERE command_executions.status <> 'attested' AND command_executions.attempt < EXCLUDED.attempt",
            command.command_id,
            str(command.key),
            command.action.value,
            command.target_system,
            executor.name,
            command.attempt,
            execution.status.value,
            execution.detail,
            json.dumps(command.ticket.model_dump(mode="json")) if command.ticket else None,
            command.correlation_id,
            command.confirm_by,
        )
    if execution.status is ExecutionStatus.FAILED:
        return Result(Outcome.APPLIED, f"failed: {execution.detail}")
    return Result(Outcome.APPLIED, execution.status.value)
