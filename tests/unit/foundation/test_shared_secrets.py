"""Secrets: empty means not configured; a weak one stops the service at start with a clear message."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from closeloop.shared_secrets import MIN_SECRET_BYTES
from connectors.http_entry import secret_matches
from connectors.settings import ConnectorsSettings
from provisioning.settings import ProvisioningSettings
from reconciliation.settings import ReconciliationSettings
from request_intake.settings import IntakeSettings

ROOT = Path(__file__).resolve().parents[3]
STRONG = "s" * MIN_SECRET_BYTES
STRONG_WHSEC = "whsec_" + base64.b64encode(b"k" * MIN_SECRET_BYTES).decode()
WEAK_WHSEC = "whsec_" + base64.b64encode(b"k" * (MIN_SECRET_BYTES - 1)).decode()

SHARED = [
    (ConnectorsSettings, "okta_secret"),
    (ConnectorsSettings, "hook_secret"),
    (IntakeSettings, "jira_secret"),
    (ProvisioningSettings, "okta_token"),
    (ProvisioningSettings, "github_token"),
]
WHSEC = [
    (IntakeSettings, "servicenow_secret"),
    (IntakeSettings, "generic_secret"),
    (ReconciliationSettings, "webhook_secret"),
]


@pytest.mark.parametrize(("settings", "name"), SHARED + WHSEC)
@pytest.mark.parametrize("empty", ["", "   ", "\u00a0"])
def test_empty_means_absent(settings: type, name: str, empty: str) -> None:
    assert getattr(settings(**{name: empty}), name) is None


@pytest.mark.parametrize(("settings", "name"), SHARED)
@pytest.mark.parametrize("weak", ["x", "whsec_AA", "s" * (MIN_SECRET_BYTES - 1), f" {STRONG}"])
def test_weak_shared_secrets_are_refused(settings: type, name: str, weak: str) -> None:
    with pytest.raises(ValidationError, match=name):
        settings(**{name: weak})


@pytest.mark.parametrize(("settings", "name"), WHSEC)
@pytest.mark.parametrize("weak", ["whsec_AA", WEAK_WHSEC, "whsec_not base64!", STRONG])
def test_weak_webhook_secrets_are_refused(settings: type, name: str, weak: str) -> None:
    with pytest.raises(ValidationError, match=name):
        settings(**{name: weak})


@pytest.mark.parametrize(("settings", "name"), SHARED)
def test_strong_shared_secrets_are_kept(settings: type, name: str) -> None:
    assert getattr(settings(**{name: STRONG}), name).get_secret_value() == STRONG


@pytest.mark.parametrize(("settings", "name"), WHSEC)
def test_strong_webhook_secrets_are_kept(settings: type, name: str) -> None:
    assert getattr(settings(**{name: STRONG_WHSEC}), name).get_secret_value() == STRONG_WHSEC


def test_an_empty_secret_matches_no_bearer() -> None:
    # The old hole: an empty secret and `Bearer <NBSP>` (stripped to "") compared equal.
    for presented in ("Bearer \u00a0", "Bearer ", "", "\u00a0"):
        assert not secret_matches(presented, SecretStr(""))
    assert secret_matches(f"Bearer {STRONG}", SecretStr(STRONG))


def test_a_service_with_a_weak_secret_refuses_to_start_and_says_why() -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("libs", "services")),
        "CLOSELOOP_CONNECTORS_HOOK_SECRET": "whsec_AA",
    }
    done = subprocess.run(
        [sys.executable, "-m", "connectors"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "refusing to start: invalid settings: hook_secret" in done.stderr
    assert f"at least {MIN_SECRET_BYTES} are required" in done.stderr
    assert "whsec_AA" not in done.stderr
    assert "Traceback" not in done.stderr
