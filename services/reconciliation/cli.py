"""`closeloop alerts ...`: read drift alerts from the alerts topic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console

from closeloop.cli_output import print_listing
from closeloop.contracts.alerts import AlertActivity, DriftAlert, DriftRule, parse_alert
from closeloop.settings import KafkaSettings
from reconciliation.settings import ReconciliationSettings
from reconciliation.topic_meta import partition_count, reader_options

app = typer.Typer(help="Drift alerts (OCSF Detection Findings) on the alerts topic.", no_args_is_help=True)

SEVERITY_NAMES = {2: "low", 3: "medium", 4: "high", 5: "critical"}
ACTIVITY_STYLE = {AlertActivity.CREATE: "bold red", AlertActivity.UPDATE: "yellow", AlertActivity.CLOSE: "green"}


async def read_alerts(
    kafka: KafkaSettings,
    topic: str,
    *,
    last: int,
    from_beginning: bool,
    follow: bool,
    idle_exit_s: float | None = None,
) -> AsyncIterator[tuple[DriftAlert | None, bytes]]:
    """Alerts of the topic (the last `last` per partition, or all), then new ones while following."""
    consumer = AIOKafkaConsumer(**reader_options(kafka, "alerts-tail"))
    await consumer.start()
    try:
        try:
            tps = [TopicPartition(topic, p) for p in range(await partition_count(kafka, topic))]
        except RuntimeError as exc:
            raise typer.BadParameter(str(exc)) from exc
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            # Explicit offsets: no automatic reset can race with them.
            consumer.seek(tp, starts[tp] if from_beginning else max(starts[tp], ends[tp] - last))
        idle_since = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    idle_since = time.monotonic()
                    try:
                        alert, _ = parse_alert(record.value or b"")
                    except ValueError:
                        alert = None
                    yield alert, record.value or b""
            positions = [await consumer.position(tp) for tp in tps]
            caught_up = all(position >= ends[tp] for position, tp in zip(positions, tps, strict=True))
            if caught_up and not follow:
                return
            if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                return
    finally:
        await consumer.stop()


TABLE_COLUMNS = ("time", "activity", "rule", "severity", "entitlement", "tickets", "message")


def table_row(alert: DriftAlert) -> dict[str, str]:
    return {
        "time": alert.time.strftime("%Y-%m-%d %H:%M:%S"),
        "activity": f"{alert.activity.name.lower()} r{alert.revision}",
        "rule": alert.rule.value,
        "severity": SEVERITY_NAMES.get(alert.severity_id, str(alert.severity_id)),
        "entitlement": alert.entitlement_key,
        "tickets": ", ".join(alert.tickets) or "-",
        "message": alert.message,
    }


def render_line(alert: DriftAlert) -> str:
    style = ACTIVITY_STYLE[alert.activity]
    tickets = ", ".join(alert.tickets) or "-"
    return (
        f"{alert.time:%Y-%m-%d %H:%M:%S} [{style}]{alert.activity.name.lower():6}[/] {alert.rule.value:28} "
        f"{SEVERITY_NAMES.get(alert.severity_id, '?'):8} {alert.entitlement_key}  tickets: {tickets}  {alert.message}"
    )


@app.command("tail")
def tail(
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw OCSF JSON, one document per line.")] = False,
    last: Annotated[int, typer.Option("--last", "-n", min=0, help="Alerts shown per partition before following.")] = 20,
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Read the whole topic.")] = False,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Keep waiting for new alerts.")] = True,
    rule: Annotated[list[DriftRule] | None, typer.Option("--rule", help="Only these rule codes (repeatable).")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Hide Close records.")] = False,
    topic: Annotated[str | None, typer.Option(help="Alerts topic (default: the reconciler's setting).")] = None,
    idle_exit: Annotated[float | None, typer.Option(help="Stop after this many seconds without a new alert.")] = None,
) -> None:
    """Show drift alerts as a table, or as raw OCSF JSON with --json."""
    kafka = KafkaSettings()
    name = topic or ReconciliationSettings().alerts_topic
    console = Console()
    wanted = set(rule or ())

    async def main() -> None:
        shown: list[DriftAlert] = []
        async for alert, raw in read_alerts(
            kafka, name, last=last, from_beginning=from_beginning, follow=follow, idle_exit_s=idle_exit
        ):
            if alert is None:
                continue
            if (wanted and alert.rule not in wanted) or (open_only and alert.activity == AlertActivity.CLOSE):
                continue
            if as_json:
                typer.echo(json.dumps(json.loads(raw), sort_keys=True))
            elif follow:
                console.print(render_line(alert), soft_wrap=True, highlight=False)
            else:
                shown.append(alert)
        if shown:
            print_listing([table_row(alert) for alert in shown], TABLE_COLUMNS)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
