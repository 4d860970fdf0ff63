"""Shared settings. Each service subclasses `ServiceSettings` with its own env prefix.

Values come from the environment, then from `$CLOSELOOP_STATE_DIR/env` (written by `make up` with the
local stack's addresses and generated dev secrets), then from the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def state_dir() -> Path:
    """Local state folder: data, logs and generated dev secrets (`.closeloop/` at the repository root)."""
    configured = os.environ.get("CLOSELOOP_STATE_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / ".closeloop"


def env_file() -> Path:
    return state_dir() / "env"


class _Base(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    def __init__(self, **values: Any) -> None:
        # The state folder's env file is read at construction time so tests can point it elsewhere.
        super().__init__(_env_file=env_file(), **values)


class KafkaSettings(_Base):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_KAFKA_", extra="ignore", frozen=True)

    # Comma-separated host:port list of the brokers to bootstrap from.
    bootstrap: str = Field(default="127.0.0.1:9092")
    # Partitions for topics closeloop creates; the unit of parallelism of every consumer group.
    partitions: int = Field(default=3, ge=1)
    # Replication factor for created topics: 1 on the local single node, 3 on a real cluster.
    replication_factor: int = Field(default=1, ge=1)
    # Client id prefix, so broker logs and quotas can tell closeloop's clients apart.
    client_id: str = Field(default="closeloop")
    # Producer linger: a few ms batches records under load at a small latency cost.
    linger_ms: int = Field(default=5, ge=0)
    # Upper bound for one request to the broker before the client gives up and retries.
    request_timeout_ms: int = Field(default=30_000, ge=1000)
    # Security protocol (PLAINTEXT locally; SASL_SSL or SSL on a managed cluster).
    security_protocol: str = Field(default="PLAINTEXT")
    # SASL mechanism and credentials when the protocol is SASL_*; never logged.
    sasl_mechanism: str | None = Field(default=None)
    sasl_username: str | None = Field(default=None)
    sasl_password: SecretStr | None = Field(default=None)


class DatabaseSettings(_Base):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_DATABASE_", extra="ignore", frozen=True)

    # DSN of the least-privilege service role (DML on its tables only); the password is never logged.
    url: SecretStr = Field(default=SecretStr("postgresql://closeloop_app@127.0.0.1:55432/closeloop"))
    # DSN of the role that owns the schema and applies migrations; defaults to `url`.
    migrate_url: SecretStr | None = Field(default=None)
    # Connection pool bounds per service process.
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    # Statement timeout (ms) so a stuck query cannot hold a partition's consumer forever.
    statement_timeout_ms: int = Field(default=30_000, ge=100)

    def migration_dsn(self) -> str:
        return (self.migrate_url or self.url).get_secret_value()


# The type a bare resource name means on each system.
DEFAULT_RESOURCE_TYPES: dict[str, str] = {
    "okta": "group",
    "entra": "group",
    "aws": "policy",
    "github": "repo",
    "k8s": "clusterrole",
    "vault": "policy",
}
# Systems whose user ids are the email by default (what a ticket naming an email always meant there).
DEFAULT_CORRELATION_RULES: dict[str, str] = {
    "okta": "okta:user:{email}",
    "entra": "entra:user:{email}",
    "k8s": "k8s:user:{email}",
}


class IdentitySettings(_Base):
    """Correlation, shared by every service that resolves names (intake, reconciliation, provisioning, expiry)."""

    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_IDENTITY_", extra="ignore", frozen=True)

    # Compacted topics announcing the identity graph and the resource catalog (every reconciler folds them all).
    links_topic: str = Field(default="identity.links.v1")
    catalog_topic: str = Field(default="catalog.resources.v1")
    # The resource type a bare name means on each system (JSON, e.g. {"okta": "group", "github": "repo"}).
    default_resource_types: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_RESOURCE_TYPES))
    # Correlation rules, email -> account per system when no record links them (JSON: {system: template} or
    # {system: {"template": ..., "match": regex}}); templates use {email}, {local}, {domain} and named groups.
    correlation_rules: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_CORRELATION_RULES))


class ServiceSettings(_Base):
    """Knobs every long-running service has. Subclasses set their own env prefix."""

    # Address the ops server (health, readiness, metrics) binds to; loopback by default.
    ops_host: str = Field(default="127.0.0.1")
    # Port of the ops server; 0 picks a free one (tests).
    ops_port: int = Field(default=0, ge=0, le=65535)
    # Log level for structlog output (DEBUG, INFO, WARNING, ERROR).
    log_level: str = Field(default="INFO")
    # Consumer group id; instances with the same group share the input partitions.
    group_id: str = Field(default="closeloop")
    # Seconds to wait for in-flight work when asked to stop.
    shutdown_grace_s: float = Field(default=10.0, ge=0)
