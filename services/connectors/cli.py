"""CLI of the connectors: `closeloop replay <source> FILE`, `closeloop snapshot ...`, `closeloop aliases ...`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from closeloop.connector_sdk.aliases import resolve_identity
from closeloop.connector_sdk.publisher import GrantPublisher
from closeloop.connector_sdk.snapshot import LiveEntitlement, publish_snapshot
from closeloop.contracts.identity import IdentityKind
from closeloop.db import create_pool
from closeloop.kafka import producer
from closeloop.logging import configure_logging
from closeloop.settings import DatabaseSettings, KafkaSettings, ProgressSettings
from connectors.bootstrap import load_aliases, open_ingestion
from connectors.ingest_records import IngestSummary
from connectors.registry import SOURCES
from connectors.replay import replay_file
from connectors.settings import ConnectorsSettings
from connectors.timestamps import first_timestamp

app = typer.Typer(help="IAM connectors: backfill vendor audit records, publish snapshots, manage identity aliases.")
aliases_app = typer.Typer(help="The identity alias table (one identity's names across systems).")
app.add_typer(aliases_app, name="aliases")
console = Console(stderr=True)


def _summary_table(source: str, summary: IngestSummary) -> Table:
    table = Table(title=f"replay {source}")
    table.add_column("records")
    table.add_column("count", justify="right")
    for name, value in summary.as_dict().items():
        table.add_row(name.replace("_", " "), str(value))
    for why, count in sorted(summary.skipped_by_reason.items()):
        table.add_row(f"  skipped: {why}", str(count))
    return table


@app.command()
def replay(
    source: Annotated[str, typer.Argument(help=f"one of {', '.join(SOURCES)}")],
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help='JSON lines, JSON array, or one JSON document (e.g. CloudTrail {"Records": [...]}); .gz ok',
        ),
    ],
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="records per transaction")] = 500,
) -> None:
    """Backfill: ingest a file of vendor records exactly as the hooks and raw topics would."""
    if source not in SOURCES:
        raise typer.BadParameter(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")
    settings = ConnectorsSettings()
    configure_logging("connectors-replay", "WARNING")
    summary = asyncio.run(_replay(settings, source, file, batch_size))
    console.print(_summary_table(source, summary))
    if summary.dead_lettered:
        console.print(f"[yellow]{summary.dead_lettered} record(s) dead-lettered to {settings.grants_topic}.dlq[/]")


async def _replay(settings: ConnectorsSettings, source: str, file: Path, batch_size: int) -> IngestSummary:
    if source not in settings.sources:
        settings = settings.model_copy(update={"sources": [*settings.sources, source]})
    ingestion = await open_ingestion(
        settings, KafkaSettings(), DatabaseSettings().for_service("connectors"), backfill_progress=ProgressSettings()
    )
    try:
        with Progress(
            TextColumn(f"replay {source}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("replay", total=None)

            def advance(done: int, total: int | None) -> None:
                progress.update(task, completed=done, total=total)

            return await replay_file(ingestion.ingest, source, file, batch_size=batch_size, progress=advance)
    finally:
        await ingestion.close()


def _entitlements(path: Path) -> Iterator[LiveEntitlement]:
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row: dict[str, Any] = json.loads(line)
                yield LiveEntitlement(
                    principal=row["principal"],
                    resource=row["resource"],
                    privilege=row["privilege"],
                    principal_kind=IdentityKind(row.get("principal_kind", "unknown")),
                    principal_aliases=tuple(row.get("principal_aliases", ())),
                    resource_type=row.get("resource_type"),
                    resource_name=row.get("resource_name"),
                    expires_at=first_timestamp(row.get("expires_at")),
                )
            except (KeyError, ValueError, TypeError) as exc:
                raise typer.BadParameter(f"{path}:{number}: {exc}") from exc


@app.command()
def snapshot(
    source_system: Annotated[str, typer.Argument(help="system listed, e.g. okta")],
    scope: Annotated[str, typer.Argument(help="what was listed: a canonical resource, or <system>:*:* for all")],
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="JSON lines of {principal, resource, privilege[, principal_kind, resource_name, expires_at]}",
        ),
    ],
    snapshot_id: Annotated[str | None, typer.Option(help="reuse an id to re-publish the same snapshot")] = None,
) -> None:
    """Publish a full listing of a scope's live entitlements, framed by start / end markers on every partition."""
    settings = ConnectorsSettings()
    entries = list(_entitlements(file))
    result = asyncio.run(_snapshot(settings, source_system, scope, entries, snapshot_id))
    console.print(
        f"snapshot {result[0]}: {result[1]} grant(s) of {scope} published to {settings.grants_topic} "
        f"({result[2]} partitions framed)"
    )


async def _snapshot(
    settings: ConnectorsSettings, system: str, scope: str, entries: list[LiveEntitlement], snapshot_id: str | None
) -> tuple[str, int, int]:
    kafka_producer = producer(KafkaSettings(), client_suffix="connectors-snapshot")
    await kafka_producer.start()
    try:
        result = await publish_snapshot(
            GrantPublisher(kafka_producer, settings.grants_topic),
            source_system=system,
            scope=scope,
            entitlements=entries,
            snapshot_id=snapshot_id,
        )
        return result.snapshot_id, result.grant_count, len(result.partitions)
    finally:
        await kafka_producer.stop()


@aliases_app.command("load")
def aliases_load(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON: {identities: [{id, aliases}]}")
    ],
) -> None:
    """Load configured identities; configured links win over links observed in events."""
    written = asyncio.run(_load(file))
    console.print(f"{written} name(s) written to the alias table")


async def _load(file: Path) -> int:
    pool = await create_pool(DatabaseSettings().for_service("connectors"))
    try:
        return await load_aliases(pool, file)
    finally:
        await pool.close()


@aliases_app.command("resolve")
def aliases_resolve(
    name: Annotated[str, typer.Argument(help="e.g. github:user:alice-gh or email:alice@example.com")],
) -> None:
    """Print the identity a name belongs to (exit 1 when unknown)."""
    identity = asyncio.run(_resolve(name))
    if identity is None:
        console.print(f"{name}: unknown")
        raise typer.Exit(1)
    typer.echo(identity)


async def _resolve(name: str) -> str | None:
    pool = await create_pool(DatabaseSettings().for_service("connectors"))
    try:
        return await resolve_identity(pool, name)
    finally:
        await pool.close()
