"""How long a source has to confirm a command: one policy for every service that issues commands.

The numbers live in the `confirmation` section of the policy file (default_policy.yaml, or the file
`CLOSELOOP_POLICY_FILE` names), which provisioning and expiry both read. The window depends on who
carries the command out: an API executor answers in minutes, a person working a manual queue in days.
Which executor that is follows from the entitlement's shape (`api_executor_for`) and from the executors
the deployment runs (`api_executors`), so every service computes the same deadline for the same key.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from closeloop.contracts.identity import EntitlementKey, split_ref

DEFAULT_POLICY = "default_policy.yaml"

GITHUB_TEAM_ROLES = ("member", "maintainer")


def api_executor_for(key: EntitlementKey) -> str | None:
    """The API executor able to grant and revoke `key` (None: only a person can, the manual executor)."""
    principal_system, principal_type, _ = split_ref(key.principal)
    resource_system, resource_type, resource_id = split_ref(key.resource)
    if (principal_system, principal_type, resource_system, resource_type) == ("okta", "user", "okta", "group"):
        return "okta" if key.privilege == "member" else None
    if (principal_system, principal_type, resource_system, resource_type) == ("github", "user", "github", "team"):
        org, _, slug = resource_id.partition("/")
        return "github" if org and slug and key.privilege in GITHUB_TEAM_ROLES else None
    return None


def policy_document(path: Path | None = None) -> dict[str, Any]:
    """The policy file as a mapping: `path`, or the packaged default (default_policy.yaml)."""
    text = path.read_text() if path else resources.files(__package__).joinpath(DEFAULT_POLICY).read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("the policy file must be a YAML mapping")
    return data


class ConfirmationPolicy(BaseModel):
    """The `confirmation` section of the policy file (documented there)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grant_within: timedelta = timedelta(hours=1)
    revoke_within: timedelta = timedelta(hours=1)
    manual_within: timedelta = timedelta(days=3)
    api_executors: tuple[str, ...] = ("okta", "github")
    systems: dict[str, timedelta] = Field(default_factory=dict)

    @field_validator("grant_within", "revoke_within", "manual_within")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("durations must be positive")
        return value

    @field_validator("systems")
    @classmethod
    def _positive_per_system(cls, value: dict[str, timedelta]) -> dict[str, timedelta]:
        if any(v <= timedelta(0) for v in value.values()):
            raise ValueError("durations must be positive")
        return value

    @classmethod
    def load(cls, path: Path | None = None) -> ConfirmationPolicy:
        """The confirmation section of the policy file at `path` (or of the packaged default)."""
        return cls.model_validate(policy_document(path).get("confirmation") or {})

    def is_manual(self, key: EntitlementKey) -> bool:
        """True when no API executor this deployment runs handles `key` (a person fulfils it)."""
        return api_executor_for(key) not in self.api_executors

    def window(self, key: EntitlementKey, *, revoke: bool) -> timedelta:
        """How long the source of `key` has to confirm a grant or a revoke."""
        if key.system in self.systems:
            return self.systems[key.system]
        if self.is_manual(key):
            return self.manual_within
        return self.revoke_within if revoke else self.grant_within
