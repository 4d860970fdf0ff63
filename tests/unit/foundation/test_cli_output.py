"""Listings never lose a value: piped output is TSV with the whole values, --json is complete."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from closeloop.cli_output import print_listing

LONG = "okta:user:" + "a-very-long-principal-name-" * 8 + "@example.com"
ROWS: list[dict[str, Any]] = [
    {"key": LONG, "note": "tab\there, newline\nthere, back\\slash", "when": datetime(2026, 3, 31, tzinfo=UTC)},
    {"key": "short", "note": None, "when": None},
]


class Colour(Enum):
    RED = "red"


def listing_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def show(as_json: bool = typer.Option(False, "--json")) -> None:
        print_listing(ROWS, ("key", "note", "when"), json_output=as_json, title="things")

    return app


def test_piped_output_is_tsv_with_every_value_whole_even_on_a_narrow_terminal() -> None:
    result = CliRunner().invoke(listing_app(), [], env={"COLUMNS": "30"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "key\tnote\twhen"
    assert lines[1].split("\t") == [LONG, "tab\\there, newline\\nthere, back\\\\slash", "2026-03-31T00:00:00+00:00"]
    assert lines[2].split("\t") == ["short", "", ""]
    assert "…" not in result.stdout


def test_json_is_the_complete_rows() -> None:
    result = CliRunner().invoke(listing_app(), ["--json"], env={"COLUMNS": "30"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"key": LONG, "note": ROWS[0]["note"], "when": "2026-03-31T00:00:00+00:00"},
        {"key": "short", "note": None, "when": None},
    ]


def test_a_terminal_gets_a_table_whose_cells_fold_instead_of_being_cut(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NO_COLOR", "1")
        patch.setenv("COLUMNS", "40")
        patch.setattr("rich.console.Console.is_terminal", property(lambda self: True))
        print_listing([{"key": LONG, "colour": Colour.RED}], title="things")
    out = capsys.readouterr().out
    assert "…" not in out
    body = [line.split("│") for line in out.splitlines() if line.startswith("│")]
    # Folded over several lines of its cell, every character is there.
    assert "".join(cells[1].strip() for cells in body) == LONG
    assert body[0][2].strip() == "red"
