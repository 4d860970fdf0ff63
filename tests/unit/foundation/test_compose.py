"""docker-compose.yml is valid Compose and runs every service the project has."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "docker-compose.yml"
REQUIRED_ENV = {
    "CLOSELOOP_APP_DB_PASSWORD": "x",
    "CLOSELOOP_MIGRATOR_DB_PASSWORD": "x",
    "CLOSELOOP_INTAKE_SERVICENOW_SECRET": "x",
    "CLOSELOOP_INTAKE_JIRA_SECRET": "x",
    "CLOSELOOP_INTAKE_GENERIC_SECRET": "x",
    "CLOSELOOP_CONNECTORS_OKTA_SECRET": "x",
    "CLOSELOOP_CONNECTORS_HOOK_SECRET": "x",
}


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    raise AssertionError("neither `docker compose` nor `docker-compose` is installed; `make install` installs it")


def test_compose_file_is_valid() -> None:
    env = {**os.environ, **REQUIRED_ENV}
    result = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_secrets() -> None:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED_ENV}
    result = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    assert "CLOSELOOP_" in result.stderr


def test_every_compose_service_runs_a_module_that_exists() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    modules = [svc["command"][0] for svc in spec["services"].values() if "command" in svc]
    assert sorted(modules) == ["connectors", "expiry", "provisioning", "reconciliation", "request_intake"]
    for module in modules:
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module
    assert (REPO / spec["services"]["init"]["build"]["dockerfile"]).is_file()
