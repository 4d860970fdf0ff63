"""`make demo`: start every service on the local stack, play five stories through the real ingress, show the
drift alerts as they arrive and the entitlement record after. Exits 0 only when every expected alert arrived.

    python -m closeloop_demo [--json] [--keep] [--timeout 150]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

from closeloop.contracts.alerts import DriftAlert
from closeloop.settings import KafkaSettings
from closeloop_demo.config import DemoConfig
from closeloop_demo.processes import SERVICES, ServiceProcesses
from closeloop_demo.senders import Senders
from closeloop_demo.stories import Expectation, Stories, play
from closeloop_demo.watch import TopicWatcher
from reconciliation.cli import render_line


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="closeloop-demo", description="The closeloop story on the local stack.")
    parser.add_argument("--json", action="store_true", help="print alerts as raw OCSF JSON")
    parser.add_argument("--keep", action="store_true", help="leave the services running afterwards")
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds to wait for every expected alert")
    return parser.parse_args()


def show_alert(console: Console, as_json: bool) -> Callable[[DriftAlert, dict[str, Any]], None]:
    def show(alert: DriftAlert, document: dict[str, Any]) -> None:
        if as_json:
            console.print_json(json.dumps(document))
        else:
            console.print(f"[bold magenta]{'alert':>13}[/] " + render_line(alert), highlight=False, soft_wrap=True)

    return show


def record_table(principals: list[str]) -> Table:
    table = Table(title="The entitlement record for this run's identities")
    for column in ("principal", "resource", "privilege", "status", "owner", "ticket", "expires"):
        table.add_column(column, overflow="fold")
    for principal in principals:
        result = subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "closeloop_cli.main", "entitlements", "list", "--principal", principal, "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            table.add_row(principal, "(could not read the record)", "", "", "", "", "")
            continue
        for row in json.loads(result.stdout):
            ticket = (row.get("approving_ticket") or {}) if isinstance(row.get("approving_ticket"), dict) else {}
            tickets = row.get("tickets") or []
            number = ticket.get("ticket_number") or (tickets[0]["ticket_number"] if tickets else "-")
            table.add_row(
                row["key"]["principal"],
                row["key"]["resource"],
                row["key"]["privilege"],
                row["status"],
                row.get("owner") or "-",
                number,
                (row.get("expires_at") or "-")[:19],
            )
    return table


def summary_table(expectations: list[Expectation], met: dict[Expectation, bool]) -> Table:
    table = Table(title="What each story expected")
    for column in ("story", "expected", "entitlement", ""):
        table.add_column(column, overflow="fold")
    for exp in expectations:
        expected = exp.rule.value if exp.rule else "no open alert (record revoked)"
        table.add_row(exp.story, expected, exp.key_contains, "[green]✓[/]" if met[exp] else "[red]✗ missing[/]")
    return table


async def main_async(args: argparse.Namespace) -> int:
    # Piped output (make, CI logs) gets a wide console so alert lines stay one per line.
    console = Console(width=None if sys.stdout.isatty() else 180)
    config = DemoConfig()
    run_id = uuid.uuid4().hex[:6]
    processes = ServiceProcesses(sys.executable, config.service_env())
    console.rule(f"closeloop demo (run {run_id})")
    console.print("Starting " + ", ".join(s.name for s in SERVICES) + " …")
    processes.start_all()
    watcher = TopicWatcher(KafkaSettings())
    try:
        await processes.wait_ready()
        console.print("All services ready: " + ", ".join(f"{n} (pid {p})" for n, p in processes.pids().items()))
        await watcher.start()
        watcher.observed.on_alert = show_alert(console, args.json)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            stories = Stories(Senders(session, config), watcher, console, run_id)
            expectations, failures = await play(stories)
        await watcher.wait_for(lambda seen: all(e.met(seen) for e in expectations), args.timeout)
        met = {e: e.met(watcher.observed) for e in expectations}
        console.rule("Summary")
        console.print(summary_table(expectations, met))
        console.print(record_table(stories.principals))
        for failure in failures:
            console.print(f"[red]story failed:[/] {failure}")
        ok = all(met.values()) and not failures and len(expectations) == 5
        console.print("[bold green]Every expected alert arrived.[/]" if ok else "[bold red]Some stories fell short.[/]")
        if not ok:
            console.print(f"Service logs: {processes.log_dir}/demo-*.log")
        return 0 if ok else 1
    finally:
        await watcher.stop()
        if args.keep:
            console.print(
                "Services left running (--keep): " + ", ".join(f"{n}={p}" for n, p in processes.pids().items())
            )
        else:
            processes.stop_all()


def main() -> None:
    sys.exit(asyncio.run(main_async(parse_args())))


if __name__ == "__main__":
    main()
