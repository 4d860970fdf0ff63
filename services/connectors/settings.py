"""Settings of the connectors service (env prefix `CLOSELOOP_CONNECTORS_`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from closeloop.settings import ServiceSettings
from closeloop.shared_secrets import OptionalSharedSecret
from closeloop.topics import IAM_GRANTS, IAM_RAW_SOURCES
from connectors.identity import DEFAULT_AGENT_PATTERNS, DEFAULT_BOT_PATTERNS, DEFAULT_SERVICE_PATTERNS

MIB = 1024 * 1024


class ConnectorsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_CONNECTORS_", extra="ignore", frozen=True)

    # One HTTP app serves the IAM hooks (/v1/hooks/<source>) and the ops routes (/healthz, /readyz, /metrics).
    ops_port: int = Field(default=8481, ge=0, le=65535)
    # Serve /healthz, /readyz and /metrics on their own listener (ops_host:<this port>, 0 = any free one)
    # instead of the hook listener on ops_port, so the public port exposes the hooks alone. Unset: shared.
    ops_separate_port: int | None = Field(default=None, ge=0, le=65535)
    # Consumer group of the raw-topic consumers; instances with the same group share the partitions.
    group_id: str = Field(default="closeloop-connectors")
    # Topic the normalized grant events go to; malformed input goes to `<grants_topic>.dlq`.
    grants_topic: str = Field(default=IAM_GRANTS, min_length=1)
    # Raw vendor records are read from `<raw_topic_prefix><source>` (e.g. iam.raw.okta).
    raw_topic_prefix: str = Field(default="iam.raw.", min_length=1)
    # Sources whose hooks and raw topics are enabled.
    sources: list[str] = Field(default_factory=lambda: list(IAM_RAW_SOURCES))
    # Consume the raw topics (turn off to run an ingress-only instance).
    consume_raw_topics: bool = Field(default=True)
    # Create the grants, dead-letter and raw topics at start if missing (idempotent).
    ensure_topics: bool = Field(default=True)
    # Shared secret Okta sends verbatim in the `Authorization` header of event hooks; never logged.
    # An empty value means unset (the hook refuses every request); under 24 bytes stops the service at start.
    okta_secret: OptionalSharedSecret = Field(default=None)
    # Bearer secret (`Authorization: Bearer <secret>`) of every other hook; never logged.
    hook_secret: OptionalSharedSecret = Field(default=None)
    # Okta org name (e.g. acme.okta.com) used in API-token resources `okta:org:<org>`.
    okta_org: str | None = Field(default=None)
    # Name of the Kubernetes cluster whose audit events arrive unlabelled (AKS / GKE records name theirs).
    k8s_cluster: str = Field(default="default", min_length=1)
    # Regex of users whose TokenRequests are routine and not reported (kubelets refresh tokens hourly).
    k8s_ignored_token_requesters: str = Field(default=r"^system:node:")
    # Name patterns (regex, case-insensitive) marking AI agents, bots and service / CI identities.
    agent_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_AGENT_PATTERNS))
    bot_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_BOT_PATTERNS))
    service_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_SERVICE_PATTERNS))
    # Largest hook body accepted; larger ones get 413.
    max_body_bytes: int = Field(default=MIB, ge=1024)
    # Records per transaction on replay (and the raw-topic consumer's poll size).
    batch_size: int = Field(default=500, ge=1, le=10_000)
    # Processed vendor record ids are kept this long for deduplication, then purged.
    processed_retention_days: int = Field(default=30, ge=1)
    # Optional identity alias mapping (JSON or YAML) loaded at start: {"identities": [{"id", "aliases"}]}.
    alias_file: Path | None = Field(default=None)

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(IAM_RAW_SOURCES))
        if unknown:
            raise ValueError(f"unknown sources {unknown}; known: {list(IAM_RAW_SOURCES)}")
        return value

    def raw_topic(self, source: str) -> str:
        return f"{self.raw_topic_prefix}{source}"
