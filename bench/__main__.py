"""Run every benchmark in one run, print one table (ratios first), write bench/results/latest.json.

Absolute times on shared machines are noisy; each benchmark also measures a baseline on the same broker
or database in the same run and reports the ratio, which is the figure to compare across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from closeloop.logging import configure_logging
from closeloop.settings import DatabaseSettings, KafkaSettings

BENCHMARKS = (
    "bench_intake",
    "bench_connectors",
    "bench_provisioning",
    "bench_expiry",
    "bench_reconciliation",
    "bench_watermarks",
)
RESULTS = Path(__file__).parent / "results" / "latest.json"


def machine() -> dict[str, Any]:
    with open("/proc/meminfo") as meminfo:
        total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(total_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


async def run_all(names: list[str]) -> list[dict[str, Any]]:
    kafka, database = KafkaSettings(), DatabaseSettings()
    rows: list[dict[str, Any]] = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        started = time.perf_counter()
        try:
            produced = await module.run(kafka, database)
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            produced = [{"benchmark": name, "metric": "error", "value": float("nan"), "unit": repr(exc)[:120]}]
        for row in produced:
            row.setdefault("benchmark", name)
        rows.extend(produced)
        print(f"{name}: {time.perf_counter() - started:.1f}s", flush=True)
    return rows


def render(rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    console = Console(width=140)
    ratios = Table(title="Ratios (same run, same machine)")
    for column in ("benchmark", "metric", "ratio", "to baseline"):
        ratios.add_column(column)
    for row in rows:
        if row.get("ratio") is not None:
            ratios.add_row(row["benchmark"], row["metric"], f"{row['ratio']:.3f}", str(row.get("ratio_to", "")))
    absolute = Table(
        title=f"Absolute figures ({info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']})"
    )
    for column in ("benchmark", "metric", "value", "unit"):
        absolute.add_column(column)
    for row in rows:
        absolute.add_row(row["benchmark"], row["metric"], f"{row['value']:,.2f}", str(row.get("unit", "")))
    console.print(ratios)
    console.print(absolute)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), help="benchmarks to run (default: all)")
    args = parser.parse_args()
    configure_logging("bench", "WARNING")  # the services under test log every request at INFO
    info = machine()
    rows = asyncio.run(run_all(args.names))
    render(rows, info)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"when": datetime.now(UTC).isoformat(), "machine": info, "results": rows}, indent=2) + "\n"
    )
    print(f"written to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
