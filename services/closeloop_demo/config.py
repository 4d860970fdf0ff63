"""Demo settings: addresses and dev secrets from the local stack, and short windows so the story is quick."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import yaml

from closeloop.record.confirmation import policy_document
from closeloop.settings import env_file, state_dir

# Service knobs the demo shortens so each story plays out in seconds instead of minutes.
DEMO_SERVICE_ENV: dict[str, str] = {
    "CLOSELOOP_EXPIRY_SWEEP_INTERVAL_S": "1",
    "CLOSELOOP_RECONCILIATION_GRANT_BEFORE_APPROVAL_GRACE": "PT3S",
    "CLOSELOOP_RECONCILIATION_CLOSED_REMOVAL_GRACE": "PT5S",
    "CLOSELOOP_RECONCILIATION_EXPIRY_GRACE": "PT3S",
    "CLOSELOOP_RECONCILIATION_RECORD_SETTLE_GRACE": "PT3S",
    "CLOSELOOP_RECONCILIATION_TIMER_INTERVAL_S": "0.5",
    # The demo's "ITSM" is the demo itself, sending at once.
    "CLOSELOOP_RECONCILIATION_ITSM_DELIVERY_ALLOWANCE": "PT1S",
}


# Confirmation windows of the demo's policy file (the packaged policy otherwise): a revoke nobody confirms
# is reported within a minute, whoever issued it.
DEMO_CONFIRMATION = {"grant_within": "PT60S", "revoke_within": "PT60S", "manual_within": "PT60S"}


def write_demo_policy() -> str:
    """The packaged policy with the demo's short confirmation windows, written to the state folder."""
    document = policy_document()
    document["confirmation"] = {**document.get("confirmation", {}), **DEMO_CONFIRMATION}
    path = state_dir() / "demo-policy.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return str(path)


def _stack_env() -> dict[str, str]:
    values: dict[str, str] = {}
    path = env_file()
    if path.is_file():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    values.update({k: v for k, v in os.environ.items() if k.startswith("CLOSELOOP_")})
    return values


@dataclass(frozen=True)
class DemoConfig:
    env: dict[str, str] = field(default_factory=_stack_env)
    intake_url: str = "http://127.0.0.1:8480"
    connectors_url: str = "http://127.0.0.1:8481"

    def secret(self, name: str) -> str:
        value = self.env.get(name)
        if not value:
            raise SystemExit(f"{name} is not set: run `make up` first (it writes {env_file()})")
        return value

    @property
    def servicenow_secret(self) -> str:
        return self.secret("CLOSELOOP_INTAKE_SERVICENOW_SECRET")

    @property
    def okta_secret(self) -> str:
        return self.secret("CLOSELOOP_CONNECTORS_OKTA_SECRET")

    @property
    def hook_secret(self) -> str:
        return self.secret("CLOSELOOP_CONNECTORS_HOOK_SECRET")

    def service_env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.env,
            **DEMO_SERVICE_ENV,
            "CLOSELOOP_POLICY_FILE": write_demo_policy(),
            "CLOSELOOP_STATE_DIR": str(state_dir()),
        }
