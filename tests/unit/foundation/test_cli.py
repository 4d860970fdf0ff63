from __future__ import annotations

from typer.testing import CliRunner

from closeloop_cli.main import app


def test_every_service_contributes_its_commands() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for command in (
        "entitlements",
        "evidence",
        "audit",
        "attest",
        "replay",
        "snapshot",
        "alerts",
        "expiry",
        "intake",
        "dlq",
    ):
        assert f" {command} " in result.output, command


def test_dry_run_repair_command_is_offered() -> None:
    result = CliRunner().invoke(app, ["expiry", "sweep", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--dry-run" in result.output
