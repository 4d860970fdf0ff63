"""Settings of the provisioning service (env prefix `CLOSELOOP_PROVISIONING_`).

Executor credentials are `SecretStr` and never logged. An API executor is on only when both its base
URL and its token are set; every other system goes to the manual executor (attested by a person).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from closeloop import topics
from closeloop.settings import ServiceSettings
from closeloop.shared_secrets import OptionalSharedSecret


class ProvisioningSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_PROVISIONING_", extra="ignore", frozen=True)

    # Ops server (health, readiness, metrics) port.
    ops_port: int = Field(default=8482, ge=0, le=65535)
    # Consumer group of the record consumer (tickets + grants); instances share the partitions.
    group_id: str = Field(default="closeloop-provisioning")
    # Name under which applied inputs are remembered in processed_events (dedupe across restarts).
    consumer_name: str = Field(default="provisioning")

    # --- topics (overridable so tests use unique names) ---
    # Normalized ticket transitions from request-intake.
    tickets_topic: str = Field(default=topics.ITSM_TICKETS)
    # Grant / revoke / principal-status events from the IAM connectors (and manual attestations).
    grants_topic: str = Field(default=topics.IAM_GRANTS)
    # The entitlement record, one event per change (compacted, keyed by entitlement key).
    entitlements_topic: str = Field(default=topics.ENTITLEMENTS)
    # Grant and revoke commands for the executors.
    commands_topic: str = Field(default=topics.PROVISIONING_COMMANDS)
    # Create the topics above (and their dead-letter topics) at start when missing.
    ensure_topics: bool = Field(default=True)

    # --- record ---
    # A repeated grant report for an active entitlement refreshes verified_at (an audited `verified`
    # change) only when the last verification is older than this, so snapshots do not flood the record.
    reverify_after_s: float = Field(default=3600.0, ge=0)
    # Records per consumer poll.
    batch_size: int = Field(default=500, ge=1)
    # Outbox relay: fallback poll interval when no NOTIFY arrives, and rows per publish batch.
    outbox_poll_interval_s: float = Field(default=0.5, gt=0)
    outbox_batch_size: int = Field(default=500, ge=1)

    # --- executors ---
    # Run the executor runner (consumes commands_topic) in this process.
    run_executors: bool = Field(default=True)
    # Consumer group of the executor runner.
    executor_group_id: str = Field(default="closeloop-provisioning-executors")
    # Okta org URL (https://example.okta.com) and API token (SSWS); both set = Okta executor on.
    okta_base_url: str | None = Field(default=None)
    okta_token: OptionalSharedSecret = Field(default=None)
    # GitHub API URL (https://api.github.com, or GHES https://host/api/v3) and token; token set = on.
    github_base_url: str = Field(default="https://api.github.com")
    github_token: OptionalSharedSecret = Field(default=None)
    # GitHub REST API version header.
    github_api_version: str = Field(default="2022-11-28")
    # Attempts per command for 429 / 5xx / connection errors before it is recorded as failed.
    executor_max_attempts: int = Field(default=5, ge=1)
    # First backoff step (seconds); doubles per attempt.
    executor_backoff_base_s: float = Field(default=0.5, gt=0)
    # Ceiling of the exponential backoff between attempts (seconds); Retry-After is honoured up to it.
    executor_max_backoff_s: float = Field(default=30.0, gt=0)
    # Timeout of one HTTP request to an IAM API (seconds).
    executor_timeout_s: float = Field(default=15.0, gt=0)
