"""Shared settings. Each service subclasses `ServiceSettings` with its own env prefix.

Values come from the environment, then from `$CLOSELOOP_STATE_DIR/env` (written by `make up` with the
local stack's addresses and generated dev secrets), then from the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
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
    # Security protocol: PLAINTEXT locally; SASL_SSL (SCRAM or PLAIN over TLS) or SSL (TLS, with a client
    # certificate for mTLS) on a real cluster. Built into an ssl_context by closeloop.kafka.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(default="PLAINTEXT")
    # SASL mechanism and credentials when the protocol is SASL_*; the password is never logged.
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(default=None)
    sasl_username: str | None = Field(default=None)
    sasl_password: SecretStr | None = Field(default=None)
    # PEM bundle of the CA(s) that signed the brokers' certificates; unset: the system trust store.
    ssl_cafile: Path | None = Field(default=None)
    # Client certificate chain and private key (PEM) for mTLS; both or neither.
    ssl_certfile: Path | None = Field(default=None)
    ssl_keyfile: Path | None = Field(default=None)
    # Password of an encrypted ssl_keyfile.
    ssl_key_password: SecretStr | None = Field(default=None)
    # Check that the broker's certificate names the host connected to (turn off only for IP-only labs).
    ssl_check_hostname: bool = Field(default=True)

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(f"{self.security_protocol} needs sasl_mechanism, sasl_username and sasl_password")
        if not sasl and self.sasl_mechanism:
            raise ValueError(f"sasl_mechanism is set but security_protocol is {self.security_protocol}")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together (mTLS)")
        if not self.uses_tls and (self.ssl_cafile or self.ssl_certfile):
            raise ValueError(f"TLS files are set but security_protocol is {self.security_protocol}")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")


class DatabaseSettings(_Base):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_DATABASE_", extra="ignore", frozen=True)

    # DSN of the least-privilege service role (DML on its tables only); the password is never logged.
    # A service without its own DSN below uses this one (closeloop_app holds what all services need).
    url: SecretStr = Field(default=SecretStr("postgresql://closeloop_app@127.0.0.1:55432/closeloop"))
    # Each service's own role (migration 0343 grants it only what that service does); unset: `url`.
    intake_url: SecretStr | None = Field(default=None)
    connectors_url: SecretStr | None = Field(default=None)
    provisioning_url: SecretStr | None = Field(default=None)
    expiry_url: SecretStr | None = Field(default=None)
    # DSN of the role that owns the schema and applies migrations; defaults to `url`.
    migrate_url: SecretStr | None = Field(default=None)
    # Connection pool bounds per service process.
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    # Statement timeout (ms) so a stuck query cannot hold a partition's consumer forever.
    statement_timeout_ms: int = Field(default=30_000, ge=100)

    def migration_dsn(self) -> str:
        return (self.migrate_url or self.url).get_secret_value()

    def for_service(self, service: Literal["intake", "connectors", "provisioning", "expiry"]) -> DatabaseSettings:
        """These settings on the service's own role, when it has a DSN of its own (empty means none)."""
        own: SecretStr | None = getattr(self, f"{service}_url")
        return self if own is None or not own.get_secret_value() else self.model_copy(update={"url": own})


class AuditSettings(_Base):
    """Signed checkpoints of the audit chain head (closeloop.record.checkpoint)."""

    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_AUDIT_", extra="ignore", frozen=True)

    # File holding the HMAC-SHA256 checkpoint key (hex, at least 32 bytes). Keep it away from the
    # database and its owner. Unset: no checkpoints are written and `audit verify` checks the chain alone.
    checkpoint_key_file: Path | None = Field(default=None)
    # Append-only file of signed checkpoints (JSON lines); unset: audit-checkpoints.jsonl next to the key.
    checkpoint_file: Path | None = Field(default=None)
    # Seconds between checkpoints written by provisioning; a rewrite of the rows appended since the
    # last checkpoint is only caught by the chain itself. 0: provisioning writes none (use a cron job
    # running `closeloop audit checkpoint`).
    checkpoint_interval_s: float = Field(default=60.0, ge=0)


class PolicySettings(_Base):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_POLICY_", extra="ignore", frozen=True)

    # The policy file (YAML) every service reads: grant rules (provisioning) and confirmation windows
    # (provisioning and expiry). Empty means the packaged default (closeloop.record's default_policy.yaml).
    file: Path | None = Field(default=None)


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


class ProgressSettings(_Base):
    """Stream progress (watermark) records a producing service publishes on its output partitions."""

    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_PROGRESS_", extra="ignore", frozen=True)

    # Seconds between progress records on each output partition; the reconciler judges a missing ticket or
    # grant at the earliest one interval after the input's watermark passed the deadline.
    interval_s: float = Field(default=1.0, gt=0, le=60)
    # Stable name of this instance in progress records (default: the host name). It must survive restarts:
    # a consumer waits for a silent producer until its producer expiry, so a new name after every crash would
    # hold judgments that long.
    instance: str | None = Field(default=None, max_length=150)
