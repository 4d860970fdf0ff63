"""Operator commands on the entitlement record (mounted at the top of `closeloop`):

    closeloop entitlements list [--status active] [--principal ...] [--owner ...] [--ticket RITM...] [--json]
    closeloop entitlements show '<principal>|<resource>|<privilege>' [--json]
    closeloop evidence export --at 2026-03-31 --format csv|json [--output file]
    closeloop audit verify [--expect-seq N --expect-hash H] [--json]
    closeloop audit checkpoint [--json]
    closeloop manual pending [--json]
    closeloop attest <command-id> --by alice@example.com --evidence "removed in the admin console, ref CHG0042"

They connect as the service role (CLOSELOOP_DATABASE_URL) and only read, except `attest`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from closeloop.contracts.entitlements import EntitlementStatus
from closeloop.contracts.identity import EntitlementKey
from closeloop.record import RecordTopics, checkpoint, repository, verify_chain
from closeloop.record.audit import history
from closeloop.settings import AuditSettings, DatabaseSettings
from provisioning.attest_command import AttestationRefused, attest_command, awaiting_attestation
from provisioning.export_evidence import COLUMNS, csv_cell, export_evidence
from provisioning.settings import ProvisioningSettings

app = typer.Typer(help="The entitlement record: entitlements, evidence, audit chain, manual attestations.")
entitlements_app = typer.Typer(help="Who holds what, under which ticket, until when, owned by whom.")
evidence_app = typer.Typer(help="Evidence for auditors.")
audit_app = typer.Typer(help="The hash-chained audit log.")
manual_app = typer.Typer(help="Commands the manual executor waits on.")
app.add_typer(entitlements_app, name="entitlements")
app.add_typer(evidence_app, name="evidence")
app.add_typer(audit_app, name="audit")
app.add_typer(manual_app, name="manual")

console = Console()
T = TypeVar("T")


def _run(work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def main() -> T:
        pool = await asyncpg.create_pool(DatabaseSettings().url.get_secret_value(), min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def parse_time(text: str) -> datetime:
    """ISO 8601 time; a bare date means the end of that day (UTC); no offset means UTC."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time.max, tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 date or time: {text}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@entitlements_app.command("list")
def list_entitlements(
    status: Annotated[list[EntitlementStatus] | None, typer.Option(help="Only these statuses (repeatable).")] = None,
    principal: Annotated[
        str | None, typer.Option(help="Canonical principal, e.g. okta:user:alice@example.com.")
    ] = None,
    owner: Annotated[str | None, typer.Option(help="Owner.")] = None,
    resource: Annotated[str | None, typer.Option(help="Canonical resource.")] = None,
    ticket: Annotated[str | None, typer.Option(help="Ticket number (RITM0010001, ACC-42).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Entitlements in the record."""

    async def work(pool: asyncpg.Pool) -> list[Any]:
        async with pool.acquire() as conn:
            return await repository.list_entitlements(
                conn,
                statuses=status or None,
                principal=principal,
                owner=owner,
                resource=resource,
                ticket_number=ticket,
                limit=limit,
            )

    records = _run(work)
    if as_json:
        _print_json([r.model_dump(mode="json") for r in records])
        return
    table = Table(title=f"entitlements ({len(records)})")
    for column in ("principal", "resource", "privilege", "status", "owner", "ticket", "expires", "recertified"):
        table.add_column(column)
    for r in records:
        approving = r.approving_ticket
        table.add_row(
            r.key.principal,
            r.key.resource,
            r.key.privilege,
            r.status.value,
            r.owner or "-",
            approving.ticket_number if approving else "-",
            _when(r.expires_at),
            _when(r.last_recertified_at),
        )
    console.print(table)


@entitlements_app.command("show")
def show_entitlement(
    key: Annotated[str, typer.Argument(help="Entitlement key '<principal>|<resource>|<privilege>'.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False,
) -> None:
    """One entitlement: its record, its recertifications and its audit history."""
    try:
        parsed = EntitlementKey.parse(key)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def work(pool: asyncpg.Pool) -> dict[str, Any] | None:
        async with pool.acquire() as conn:
            record = await repository.load(conn, parsed)
            if record is None:
                return None
            return {
                "record": record.model_dump(mode="json"),
                "recertifications": [
                    e.model_dump(mode="json") for e in await repository.recertifications_for(conn, parsed)
                ],
                "history": [
                    {
                        "seq": row.seq,
                        "recorded_at": row.recorded_at.isoformat(),
                        "entity_type": row.entity_type,
                        "action": row.action,
                        "actor": row.actor,
                        "reason": (row.payload.get("record") or {}).get("reason"),
                        "hash": row.hash,
                    }
                    for row in await history(conn, str(parsed))
                ],
            }

    shown = _run(work)
    if shown is None:
        console.print(f"[red]no entitlement {key}[/red]")
        raise typer.Exit(1)
    if as_json:
        _print_json(shown)
        return
    record = shown["record"]
    for field in (
        "status",
        "owner",
        "principal_kind",
        "source_system",
        "granted_at",
        "expires_at",
        "verified_at",
        "revocation_triggers",
        "project",
        "last_recertified_at",
        "recertification_due_at",
        "exception_window_end",
        "revoke_requested_at",
        "revoke_confirm_by",
        "reason",
    ):
        console.print(f"[bold]{field}[/bold]: {record.get(field)}")
    console.print(
        "[bold]tickets[/bold]: "
        + ", ".join(f"{t['system']}:{t['ticket_number']} ({t['kind']})" for t in record["tickets"])
    )
    table = Table(title="history")
    for column in ("seq", "recorded", "type", "action", "actor", "reason"):
        table.add_column(column)
    for row in shown["history"]:
        table.add_row(
            str(row["seq"]), row["recorded_at"], row["entity_type"], row["action"], row["actor"], row["reason"] or ""
        )
    console.print(table)


@evidence_app.command("export")
def evidence_export(
    at: Annotated[
        str | None, typer.Option(help="As of (ISO 8601; a bare date = end of that day UTC). Default: now.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    all_statuses: Annotated[bool, typer.Option(help="Include revoked, expired, refused and pending too.")] = False,
) -> None:
    """What was held at a time, under which ticket, with recertification evidence (from the audit log)."""
    if fmt not in ("csv", "json"):
        raise typer.BadParameter("--format must be csv or json")
    as_of = parse_time(at) if at else datetime.now(UTC)

    async def work(pool: asyncpg.Pool) -> dict[str, Any]:
        async with pool.acquire() as conn:
            return await export_evidence(conn, as_of, all_statuses=all_statuses)

    document = _run(work)
    if fmt == "json":
        text = json.dumps(document, indent=2, default=str) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        for row in document["entitlements"]:
            writer.writerow([csv_cell(row[c]) for c in COLUMNS])
        text = buffer.getvalue()
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text)
    chain = document["audit_chain"]
    err = Console(stderr=True)
    if chain["ok"]:
        err.print(
            f"audit chain verified: {chain['rows_checked']} rows, head seq {chain['head_seq']} hash {chain['head_hash']}"
        )
    else:
        err.print(f"[red]audit chain BROKEN at seq {chain['first_broken_seq']}: {chain['problem']}[/red]")
        raise typer.Exit(2)


@audit_app.command("verify")
def audit_verify(
    expect_seq: Annotated[int | None, typer.Option(help="Seq of an externally anchored head.")] = None,
    expect_hash: Annotated[str | None, typer.Option(help="Hash recorded for --expect-seq.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False,
) -> None:
    """Check every row of the audit log against the hash chain and against every signed checkpoint
    (CLOSELOOP_AUDIT_CHECKPOINT_KEY_FILE; at least one is then required); exit 1 at the first broken
    position."""
    if (expect_seq is None) != (expect_hash is None):
        raise typer.BadParameter("--expect-seq and --expect-hash go together")
    expect = (expect_seq, expect_hash) if expect_seq is not None and expect_hash is not None else None
    configured = _checkpoints()

    async def work(pool: asyncpg.Pool) -> dict[str, Any]:
        async with pool.acquire() as conn:
            if configured is None:
                return (await verify_chain(conn, expect=expect)).as_dict()
            key, checkpoints = configured
            return (await checkpoint.verify_against_checkpoints(conn, key, checkpoints, expect=expect)).as_dict()

    report = _run(work)
    if as_json:
        _print_json(report)
    elif report["ok"]:
        anchored = (
            f", {report['anchors_checked']} signed checkpoint(s)" if configured else " (no checkpoint key: unanchored)"
        )
        console.print(
            f"[green]audit chain intact[/green]: {report['rows_checked']} rows, head seq {report['head_seq']}"
            f" hash {report['head_hash']}{anchored}"
        )
    else:
        console.print(f"[red]audit chain broken at seq {report['first_broken_seq']}[/red]: {report['problem']}")
    if not report["ok"]:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False) -> None:
    """Verify what was appended since the last checkpoint, then sign the chain head and append it to the
    checkpoint file (what provisioning does every CLOSELOOP_AUDIT_CHECKPOINT_INTERVAL_S)."""
    configured = _checkpoints()
    if configured is None:
        raise typer.BadParameter("set CLOSELOOP_AUDIT_CHECKPOINT_KEY_FILE to sign checkpoints")
    key, checkpoints = configured

    async def work(pool: asyncpg.Pool) -> checkpoint.Checkpoint:
        async with pool.acquire() as conn:
            return await checkpoint.write_checkpoint(conn, key, checkpoints)

    try:
        signed = _run(work)
    except checkpoint.CheckpointError as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if as_json:
        sys.stdout.write(signed.to_json() + "\n")
    else:
        console.print(
            f"checkpoint signed: chain {signed.chain_id} seq {signed.seq} hash {signed.hash} -> {checkpoints.path}"
        )


def _checkpoints() -> tuple[checkpoint.CheckpointKey, checkpoint.CheckpointLog] | None:
    try:
        return checkpoint.from_settings(AuditSettings())
    except checkpoint.CheckpointError as exc:
        raise typer.BadParameter(str(exc)) from exc


@manual_app.command("pending")
def manual_pending(as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False) -> None:
    """Manual commands waiting for a person to carry them out and attest."""
    rows = _run(awaiting_attestation)
    items = [dict(r) for r in rows]
    if as_json:
        _print_json(items)
        return
    table = Table(title=f"awaiting attestation ({len(items)})")
    for column in ("command_id", "action", "system", "entitlement", "confirm by"):
        table.add_column(column)
    for item in items:
        table.add_row(
            item["command_id"],
            item["action"],
            item["target_system"],
            item["entitlement_key"],
            _when(item["confirm_by"]),
        )
    console.print(table)


@app.command("attest")
def attest(
    command_id: Annotated[str, typer.Argument(help="The command's id (closeloop manual pending).")],
    by: Annotated[str, typer.Option("--by", help="Who carried it out.")],
    evidence: Annotated[str, typer.Option(help="Evidence: change id, screenshot reference, console log line.")],
    at: Annotated[str | None, typer.Option(help="When it was done (ISO 8601). Default: now.")] = None,
) -> None:
    """Attest that a manual grant or revoke was carried out; the record confirms it from this."""
    settings = ProvisioningSettings()
    topics = RecordTopics(
        entitlements=settings.entitlements_topic, commands=settings.commands_topic, grants=settings.grants_topic
    )
    when = parse_time(at) if at else datetime.now(UTC)

    async def work(pool: asyncpg.Pool) -> str:
        event = await attest_command(pool, topics, command_id, attested_by=by, evidence=evidence, attested_at=when)
        return event.event_id

    try:
        event_id = _run(work)
    except AttestationRefused as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"attested; grant event {event_id} queued for {settings.grants_topic}")
