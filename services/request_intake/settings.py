"""request-intake settings: environment variables prefixed `CLOSELOOP_INTAKE_` (and `$CLOSELOOP_STATE_DIR/env`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from closeloop.settings import ServiceSettings
from closeloop.shared_secrets import OptionalSharedSecret, OptionalWebhookSecret
from closeloop.topics import ITSM_TICKETS, dlq, itsm_raw

MIB = 1024 * 1024


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_INTAKE_", extra="ignore", frozen=True)

    # Address of the webhook server, which also serves /healthz, /readyz and /metrics unless
    # ops_separate_port is set.
    http_host: str = Field(default="127.0.0.1")
    # Port of the webhook server; 0 picks a free one (tests).
    http_port: int = Field(default=8480, ge=0, le=65535)
    # Serve /healthz, /readyz and /metrics on their own listener (ops_host:<this port>, 0 = any free one),
    # so the public webhook port exposes the webhooks alone. Unset: they share the webhook listener.
    ops_separate_port: int | None = Field(default=None, ge=0, le=65535)
    # Consumer group of the raw-topic ingress; instances with the same group share the raw partitions.
    group_id: str = Field(default="closeloop-request-intake")
    # Topic the normalized TicketEvents are published to.
    tickets_topic: str = Field(default=ITSM_TICKETS, min_length=1)
    # Topic for payloads that cannot be mapped, from both ingresses; empty means `<tickets_topic>.dlq`.
    dead_letter_topic: str | None = Field(default=None)
    # Raw vendor topics for publishers that write to Kafka directly (same effect as the webhooks).
    servicenow_raw_topic: str = Field(default=itsm_raw("servicenow"), min_length=1)
    jira_raw_topic: str = Field(default=itsm_raw("jira"), min_length=1)
    # Whether this instance consumes the raw topics (webhook-only instances can turn it off).
    consume_raw_topics: bool = Field(default=True)
    # Standard Webhooks secrets (`whsec_<base64>`) for ServiceNow and generic senders; never logged.
    # Without a secret the endpoint answers 503: unsigned deliveries are never accepted.
    # An empty value means unset; a key under 24 decoded bytes stops the service at start.
    servicenow_secret: OptionalWebhookSecret = Field(default=None)
    generic_secret: OptionalWebhookSecret = Field(default=None)
    # Shared secret of the Jira webhook (`X-Hub-Signature: sha256=<hex>` HMAC of the body); never logged.
    jira_secret: OptionalSharedSecret = Field(default=None)
    # Site field mapping (YAML) merged over the packaged defaults; unset uses the defaults only.
    mapping_file: Path | None = Field(default=None)
    # Largest webhook body accepted; larger bodies get 413 without being read further.
    max_body_bytes: int = Field(default=MIB, ge=1024)
    # Seconds a delivery stays claimed while being processed (a crashed claim frees itself after this).
    claim_lease_s: float = Field(default=30.0, gt=0)
    # Seconds a Standard Webhooks id is remembered beyond its timestamp (5-minute tolerance + clock skew).
    replay_window_s: float = Field(default=600.0, ge=300)
    # Seconds a Jira delivery (issue id + changelog id) is remembered as accepted; the per-ticket
    # revision check still drops older changelogs forever after.
    jira_replay_window_s: float = Field(default=7 * 24 * 3600.0, ge=300)
    # Upper bound for waiting on the broker's acknowledgement before answering 503 (the sender retries).
    publish_timeout_s: float = Field(default=15.0, gt=0)
    # How often expired delivery ids are purged.
    purge_interval_s: float = Field(default=60.0, gt=0)
    # Create the configured topics (and the dead-letter topic) at start-up when missing.
    ensure_topics: bool = Field(default=True)

    @field_validator("dead_letter_topic")
    @classmethod
    def _blank_is_default(cls, value: str | None) -> str | None:
        return value or None

    @property
    def dlq_topic(self) -> str:
        return self.dead_letter_topic or dlq(self.tickets_topic)

    def raw_topics(self) -> dict[str, str]:
        """Raw topic -> ITSM system."""
        return {self.servicenow_raw_topic: "servicenow", self.jira_raw_topic: "jira"}
