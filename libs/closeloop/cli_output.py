"""How every closeloop CLI prints a listing, so no value is ever cut short.

`--json`: a JSON array of objects, the complete values. On a terminal: a table whose cells fold (wrap)
instead of being ellipsized. Piped or redirected: tab-separated values with a header line, one row per
line, the complete values (tabs, newlines and backslashes escaped), fit for `cut`, `awk` and `sort`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table

Row = Mapping[str, Any]


def print_listing(
    rows: Sequence[Row], columns: Sequence[str] | None = None, *, json_output: bool = False, title: str | None = None
) -> None:
    """Print `rows` (the columns named, in order; every key of the first row when None)."""
    if json_output:
        sys.stdout.write(to_json([dict(row) for row in rows]) + "\n")
        return
    names = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    console = Console()
    if console.is_terminal:
        table = Table(title=title)
        for name in names:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*(text(row.get(name)) for name in names))
        console.print(table)
        return
    lines = ["\t".join(names)] + ["\t".join(_tsv(text(row.get(name))) for name in names) for row in rows]
    sys.stdout.write("\n".join(lines) + "\n")


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=_plain)


def text(value: Any) -> str:
    """A cell's text: empty for None, ISO 8601 for times, the value of an enum, comma-joined lists."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(text(item) for item in value)
    plain = _plain(value)
    return plain if isinstance(plain, str) else str(plain)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _tsv(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
