"""The `closeloop intake` sub-commands that need no infrastructure."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from request_intake.cli import app
from tests.unit.request_intake.fixtures import DATA

runner = CliRunner()


def test_normalize_dry_run_shows_events_and_skips() -> None:
    result = runner.invoke(
        app, ["normalize", str(DATA / "servicenow" / "table_api_page.json"), "--system", "servicenow"]
    )
    assert result.exit_code == 0, result.output
    assert "RITM0010042" in result.output
    assert "approved" in result.output


def test_normalize_exits_non_zero_when_a_payload_is_refused() -> None:
    result = runner.invoke(
        app, ["normalize", str(DATA / "servicenow" / "ritm_missing_resource.json"), "--system", "servicenow"]
    )
    assert result.exit_code == 1
    assert "variables.access_resource" in result.output


def test_check_mapping_prints_the_effective_mapping() -> None:
    result = runner.invoke(app, ["check-mapping", "--mapping", str(DATA / "jira" / "site_mapping.yaml")])
    assert result.exit_code == 0, result.output
    assert "fields.customfield_10052" in result.output


def test_check_mapping_refuses_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("jira:\n  fieldz: {}\n")
    result = runner.invoke(app, ["check-mapping", "--mapping", str(bad)])
    assert result.exit_code == 1
    assert "fieldz" in result.output


def test_normalize_piped_keeps_every_value_whole_and_offers_json() -> None:
    args = ["normalize", str(DATA / "servicenow" / "table_api_page.json"), "--system", "servicenow"]
    piped = runner.invoke(app, args, env={"COLUMNS": "40"})  # narrow, and not a terminal
    assert piped.exit_code == 0, piped.output
    header, *rows = [line.split("\t") for line in piped.stdout.splitlines()]
    assert header == ["#", "ticket", "result", "detail", "entitlement"]
    assert rows[-1] == [
        "1",
        "RITM0010042",
        "event",
        "approved (kind access_request, version 4)",
        "okta:user:alice.smith@example.com|okta:group:00g1engadmins|member",
    ]
    listed = json.loads(runner.invoke(app, [*args, "--json"], env={"COLUMNS": "40"}).stdout)
    assert [row["detail"] for row in listed] == [
        "requested (kind access_request, version 2)",
        "approved (kind access_request, version 4)",
    ]
