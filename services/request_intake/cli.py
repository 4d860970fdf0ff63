"""`closeloop intake ...`: check a field mapping against real payloads, and send signed test webhooks."""

from __future__ import annotations

import asyncio
import json
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from request_intake.mapping import MappingError, load_mapping
from request_intake.normalizers import normalize
from request_intake.observation import TicketObservation
from request_intake.problems import Invalid, Skipped, Unmappable
from request_intake.settings import IntakeSettings
from request_intake.signatures import sign_hub, sign_standard

app = typer.Typer(help="request-intake: ITSM ticket transitions to ticket events.", no_args_is_help=True)
console = Console()


class System(StrEnum):
    servicenow = "servicenow"
    jira = "jira"
    generic = "generic"


MappingOption = Annotated[
    Path | None, typer.Option("--mapping", help="Site mapping file (default: CLOSELOOP_INTAKE_MAPPING_FILE).")
]


def _payloads(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return [json.loads(text)]


def _mapping_path(mapping: Path | None) -> Path | None:
    return mapping if mapping is not None else IntakeSettings().mapping_file


@app.command("check-mapping")
def check_mapping(mapping: MappingOption = None) -> None:
    """Validate the mapping (defaults merged with the site file) and print the effective result."""
    try:
        loaded = load_mapping(_mapping_path(mapping))
    except MappingError as exc:
        console.print(f"[red]invalid mapping:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(yaml.safe_dump(loaded.model_dump(mode="json"), sort_keys=False), markup=False, highlight=False)


@app.command("normalize")
def normalize_file(
    path: Annotated[Path, typer.Argument(help="A JSON payload or a JSONL file of payloads.", exists=True)],
    system: Annotated[System, typer.Option(help="Which ITSM the payloads come from.")],
    mapping: MappingOption = None,
) -> None:
    """Dry run: what each payload would become (no Kafka, no database, no last-seen state)."""
    loaded = load_mapping(_mapping_path(mapping))
    table = Table("#", "ticket", "result", "transition / reason", "entitlement")
    refused = 0
    for index, payload in enumerate(_payloads(path), start=1):
        try:
            results = normalize(system.value, payload, loaded)
        except Unmappable as exc:
            refused += 1
            table.add_row(str(index), "", "[red]unmappable[/red]", exc.describe(), "")
            continue
        for result in results:
            if isinstance(result, Invalid):
                refused += 1
                table.add_row(str(index), "", "[red]unmappable[/red]", result.problem.describe(), "")
            elif isinstance(result, Skipped):
                table.add_row(str(index), result.ticket or "", "skipped", f"{result.why}: {result.detail}", "")
            else:
                table.add_row(str(index), *_describe(result))
    console.print(table)
    if refused:
        raise typer.Exit(1)


def _describe(obs: TicketObservation) -> tuple[str, str, str, str]:
    event = obs.draft
    status = f"{obs.phase.value} (kind {event.kind.value}, version {obs.version})"
    return event.ticket_number, "event", status, str(event.entitlement or event.requested_for or "")


@app.command("send")
def send(
    path: Annotated[Path, typer.Argument(help="The JSON body to send.", exists=True)],
    system: Annotated[System, typer.Option(help="Which webhook to call.")],
    url: Annotated[str, typer.Option(help="request-intake base URL.")] = "http://127.0.0.1:8480",
) -> None:
    """Sign a body with the configured secret and POST it to the webhook (local testing)."""
    settings = IntakeSettings()
    body = path.read_bytes()
    secret = {
        System.servicenow: settings.servicenow_secret,
        System.generic: settings.generic_secret,
        System.jira: settings.jira_secret,
    }[system]
    if secret is None:
        console.print(f"[red]no {system.value} secret configured[/red]")
        raise typer.Exit(1)
    if system is System.jira:
        headers = sign_hub(secret.get_secret_value(), body)
    else:
        headers = sign_standard(secret.get_secret_value(), f"msg_{uuid.uuid4().hex}", body)
    status, reply = asyncio.run(_post(f"{url.rstrip('/')}/v1/webhooks/{system.value}", body, headers))
    console.print(f"HTTP {status}")
    console.print(reply, markup=False, highlight=False)
    if status >= 300:
        raise typer.Exit(1)


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    import aiohttp

    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.post(url, data=body, headers={"Content-Type": "application/json", **headers}) as response,
    ):
        return response.status, await response.text()
