"""`closeloop identities ...` and `closeloop catalog ...`: the identity graph and the resource catalog.

Loading (alias file, catalog file, a link) writes PostgreSQL and announces on the directory topics, so the
reconciler binds the next ticket with it; `--dry-run` shows what would be written and writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from closeloop.db import create_pool
from closeloop.identity import Directory
from closeloop.identity.catalog import parse_catalog_file
from closeloop.identity.operator import (
    announce,
    load_alias_file,
    load_catalog_file,
    read_document,
    stored_announcements,
)
from closeloop.identity.store import (
    catalog_entries,
    directory_for,
    identity_of,
    names_of,
    operator_names,
    parse_alias_file,
    recorded_conflicts,
)
from closeloop.kafka import producer
from closeloop.record import repository
from closeloop.settings import DatabaseSettings, IdentitySettings, KafkaSettings

identities_app = typer.Typer(help="The identity graph: every account of one person across systems.")
catalog_app = typer.Typer(help="The resource catalog: canonical ids, display names and aliases per system.")
console = Console()
T = TypeVar("T")

FileArgument = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would be written; write nothing.")]


def _with_pool(work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def run() -> T:
        pool = await create_pool(DatabaseSettings())
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


def _announcing(load: Callable[..., Awaitable[int]], file: Path) -> int:
    async def run(pool: asyncpg.Pool) -> int:
        kafka = producer(KafkaSettings(), client_suffix="cli-directory")
        await kafka.start()
        try:
            return await load(pool, file, kafka, IdentitySettings())
        finally:
            await kafka.stop()

    return _with_pool(run)


@identities_app.command("load")
def identities_load(file: FileArgument, dry_run: DryRun = False) -> None:
    """Load the operator's alias file ({identities: [{id, aliases}]}); its links win over observed ones."""
    mapping = parse_alias_file(read_document(file))
    if dry_run:
        for identity, aliases in mapping.items():
            console.print(f"{identity}: {', '.join(operator_names(identity, aliases))}")
        return
    console.print(f"{_announcing(load_alias_file, file)} name(s) linked")


@identities_app.command("announce")
def identities_announce(dry_run: DryRun = False) -> None:
    """Announce the whole graph and catalog PostgreSQL holds on the directory topics (after an upgrade, or to
    rebuild them); reconcilers fold them like any announcement."""

    async def run(pool: asyncpg.Pool) -> tuple[int, int]:
        links, resources = await stored_announcements(pool)
        if not dry_run:
            settings = IdentitySettings()
            kafka = producer(KafkaSettings(), client_suffix="cli-directory")
            await kafka.start()
            try:
                await announce(kafka, settings.links_topic, links)
                await announce(kafka, settings.catalog_topic, resources)
            finally:
                await kafka.stop()
        return len(links), len(resources)

    links, resources = _with_pool(run)
    verb = "would announce" if dry_run else "announced"
    console.print(f"{verb} {links} identity link(s) and {resources} catalog entr(ies)")


@identities_app.command("resolve")
def identities_resolve(
    name: Annotated[str, typer.Argument(help="e.g. github:user:alice-gh or alice@example.com")],
) -> None:
    """Print the identity a name belongs to (exit 1 when unknown)."""
    found = _with_pool(lambda pool: identity_of(pool, name))
    if found is None:
        console.print(f"{name}: unknown")
        raise typer.Exit(1)
    typer.echo(found)


@identities_app.command("show")
def identities_show(name: Annotated[str, typer.Argument(help="Any name of the person: email, login, account")]) -> None:
    """Every account of one person across systems, and their live entitlements."""

    async def show(pool: asyncpg.Pool) -> int:
        identity = await identity_of(pool, name)
        if identity is None:
            console.print(f"{name}: unknown")
            return 1
        names = await names_of(pool, identity)
        table = Table(title=f"identity {identity}")
        for column in ("name", "account", "origin", "live entitlements"):
            table.add_column(column)
        async with pool.acquire() as conn:
            for linked in names:
                held = await repository.list_entitlements(conn, principal=linked.name) if linked.account else []
                live = [str(r.key) for r in held if r.is_live]
                table.add_row(linked.name, "yes" if linked.account else "", linked.origin, "\n".join(live))
        console.print(table)
        return 0

    raise typer.Exit(_with_pool(show))


@identities_app.command("conflicts")
def identities_conflicts(limit: Annotated[int, typer.Option(help="Most recent first")] = 100) -> None:
    """Names seen together that belong to different identities: reported, never merged."""
    found = _with_pool(lambda pool: recorded_conflicts(pool, limit))
    table = Table(title="identity link conflicts")
    for column in ("names", "identities", "seen by", "last seen"):
        table.add_column(column)
    for c in found:
        table.add_row(", ".join(c.names), ", ".join(c.identities), c.origin, c.last_seen.isoformat())
    console.print(table)


@catalog_app.command("load")
def catalog_load(file: FileArgument, dry_run: DryRun = False) -> None:
    """Load a catalog file ({resources: [{id, name, aliases}]}): display names and aliases people use."""
    entries = parse_catalog_file(read_document(file))
    if dry_run:
        for resource, name, aliases in entries:
            console.print(f"{resource}: {name or ''} {', '.join(aliases)}")
        return
    console.print(f"{_announcing(load_catalog_file, file)} resource(s) written")


@catalog_app.command("list")
def catalog_list(
    system: Annotated[str | None, typer.Option(help="okta, entra, aws, github, k8s, vault, ...")] = None,
) -> None:
    """The catalog: canonical id, display name, aliases."""
    entries = _with_pool(lambda pool: catalog_entries(pool, system))
    table = Table(title="resource catalog")
    for column in ("resource", "display name", "aliases"):
        table.add_column(column)
    for entry in entries:
        table.add_row(entry.resource, entry.display_name or "", ", ".join(sorted(entry.aliases)))
    console.print(table)


@catalog_app.command("resolve")
def catalog_resolve(
    name: Annotated[str, typer.Argument(help="As a ticket would write it: a display name, org/repo, type:name, an id")],
    system: Annotated[str, typer.Option(help="The ticket's access system")],
) -> None:
    """What a ticket naming this resource on this system binds to (exit 1 unresolved, 2 ambiguous)."""

    async def resolve(pool: asyncpg.Pool) -> int:
        directory = await directory_for(
            pool, Directory.from_settings(IdentitySettings()), system=system, resources=[name]
        )
        found = directory.resolve_resource(name, system)
        console.print(f"{found.outcome.value}: {', '.join(found.values)} {f'({found.how})' if found.how else ''}")
        return {"bound": 0, "unresolved": 1, "ambiguous": 2}[found.outcome.value]

    raise typer.Exit(_with_pool(resolve))
