"""`closeloop expiry ...`: repair and operator commands. Thin: parse, call a handler, print."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from closeloop.contracts.base import new_event_id
from closeloop.contracts.identity import EntitlementKey
from closeloop.db import create_pool
from closeloop.settings import DatabaseSettings
from expiry.clock import SystemClock
from expiry.context import ExpiryContext, ExpiryPolicy
from expiry.plan_sweep import plan_sweep
from expiry.recertification import Decision
from expiry.record_recertification_decision import DecisionOutcome, record_recertification_decision
from expiry.settings import ExpirySettings
from expiry.sweeper import Sweeper
from expiry.triggers import RecertificationDecision

app = typer.Typer(help="Expiry: TTLs, revocation triggers, recertification and revoke deadlines.", no_args_is_help=True)
recert_app = typer.Typer(help="Recertification decisions.", no_args_is_help=True)
app.add_typer(recert_app, name="recert")
console = Console()


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise typer.BadParameter("give a timezone, e.g. 2026-07-01T00:00:00+00:00")
    return parsed.astimezone(UTC)


@app.command()
def sweep(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what a sweep would do; change nothing.")] = False,
    at: Annotated[str | None, typer.Option(help="Plan as of this ISO 8601 instant (dry run only).")] = None,
    limit: Annotated[int, typer.Option(help="Rows examined per phase in a dry run.")] = 10_000,
) -> None:
    """Run one sweep now (repair after downtime), or show its plan with --dry-run."""
    settings = ExpirySettings()
    instant = _parse_time(at)
    if instant is not None and not dry_run:
        raise typer.BadParameter("--at is only for --dry-run: a real sweep acts at the current time")
    asyncio.run(_sweep(settings, dry_run=dry_run, at=instant, limit=limit))


async def _sweep(settings: ExpirySettings, *, dry_run: bool, at: datetime | None, limit: int) -> None:
    pool = await create_pool(DatabaseSettings().for_service("expiry"), wait_s=10)
    try:
        if dry_run:
            now = at or datetime.now(UTC)
            async with pool.acquire() as conn:
                plans = await plan_sweep(conn, ExpiryPolicy.from_settings(settings), now, limit=limit)
            table = Table(title=f"Sweep plan at {now.isoformat()} (dry run: nothing changed)")
            for column in ("phase", "actions", "examples"):
                table.add_column(column)
            for plan in plans:
                actions = ", ".join(f"{n} x {a}" for a, n in plan.actions.items()) or "nothing due"
                if plan.truncated:
                    actions += f" (first {limit} rows only)"
                table.add_row(plan.phase, actions, "\n".join(plan.sample))
            console.print(table)
            return
        ctx = ExpiryContext.from_settings(settings, pool, clock=SystemClock())
        report = await Sweeper(ctx, settings.sweep_interval_s).sweep_once()
        console.print({"actions": report.actions, "triggers_resumed": report.triggers_resumed})
        console.print("Events and commands are in the outbox; a running closeloop service relays them to Kafka.")
    finally:
        await pool.close()


@recert_app.command("decide")
def recert_decide(
    key: Annotated[str, typer.Argument(help="Entitlement key `principal|resource|privilege`.")],
    reviewer: Annotated[str, typer.Option(help="Who decided (login or email).")],
    certify: Annotated[bool, typer.Option("--certify", help="Keep the access.")] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Remove the access.")] = False,
    note: Annotated[str | None, typer.Option(help="Why, for the evidence record.")] = None,
) -> None:
    """Record a recertification decision as evidence; --revoke also revokes the entitlement."""
    if certify == revoke:
        raise typer.BadParameter("give exactly one of --certify or --revoke")
    try:
        parsed = EntitlementKey.parse(key)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    decision = Decision.CERTIFY if certify else Decision.REVOKE
    outcome = asyncio.run(_decide(ExpirySettings(), parsed, decision, reviewer, note))
    console.print(f"{key}: {outcome.value}")
    if outcome is DecisionOutcome.UNKNOWN_ENTITLEMENT:
        raise typer.Exit(code=1)


async def _decide(
    settings: ExpirySettings, key: EntitlementKey, decision: Decision, reviewer: str, note: str | None
) -> DecisionOutcome:
    pool = await create_pool(DatabaseSettings().for_service("expiry"), wait_s=10)
    try:
        clock = SystemClock()
        ctx = ExpiryContext.from_settings(settings, pool, clock=clock)
        event_id = new_event_id()
        return await record_recertification_decision(
            ctx,
            RecertificationDecision(
                key=key,
                decision=decision,
                reviewer=reviewer,
                decided_at=clock.now(),
                source_event_id=f"cli:{event_id}",
                correlation_id=event_id,
                note=note,
            ),
        )
    finally:
        await pool.close()
