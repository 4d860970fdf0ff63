"""Settings of the expiry service (env prefix `CLOSELOOP_EXPIRY_`).

Durations accept seconds (`900`) or ISO 8601 (`PT15M`, `P7D`); lists accept JSON (`["P7D","P1D"]`).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from closeloop import topics
from closeloop.contracts.grants import PrincipalStatus
from closeloop.settings import ServiceSettings


class ExpirySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_EXPIRY_", extra="ignore", frozen=True)

    # Ops server (health, readiness, metrics) port.
    ops_port: int = Field(default=8483, ge=0, le=65535)
    # Consumer group of the trigger consumer; every expiry worker joins the same group.
    group_id: str = Field(default="closeloop-expiry")
    # Source name in the envelope of every event and command this service emits.
    event_source: str = Field(default="closeloop/expiry")

    # --- topics (overridable so tests use unique names) ---
    # Ticket events: offboarding, project-end and recertification tickets.
    tickets_topic: str = Field(default=topics.ITSM_TICKETS)
    # Grant stream: principal status changes (offboarding at the identity source).
    grants_topic: str = Field(default=topics.IAM_GRANTS)
    # Entitlement record events this service announces (expired, revoke_requested, notices, ...).
    entitlements_topic: str = Field(default=topics.ENTITLEMENTS)
    # Revoke commands for the IAM executors.
    commands_topic: str = Field(default=topics.PROVISIONING_COMMANDS)
    # Create the topics above (and the inputs' dead-letter topics) at start when missing.
    ensure_topics: bool = Field(default=True)
    # Whether to run the trigger consumer (off for a sweep-only worker).
    consume_triggers: bool = Field(default=True)

    # --- sweep ---
    # Seconds between sweeps; an entitlement is revoked at most this long after it expires.
    sweep_interval_s: float = Field(default=5.0, gt=0)
    # Seconds between recertification sweeps (due dates are days apart; the phase scans every active row).
    recert_sweep_interval_s: float = Field(default=60.0, gt=0)
    # Rows locked and handled per transaction (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n).
    sweep_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Whether this worker sweeps at all (a consumer-only worker can turn it off).
    sweep_enabled: bool = Field(default=True)

    # Outbox relay: rows published per batch, and how often to look when no notification arrives.
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    outbox_poll_interval_s: float = Field(default=0.5, gt=0)

    # --- revoke retries (how long a source has to confirm a revoke is the policy file's `confirmation`) ---
    # Wait after a missed confirmation deadline before the first retry; doubled each further miss.
    retry_initial: timedelta = Field(default=timedelta(minutes=1))
    # Growth factor of the retry wait.
    retry_factor: float = Field(default=2.0, ge=1.0)
    # Upper bound of the retry wait.
    retry_max: timedelta = Field(default=timedelta(hours=6))
    # Attempts in total (the first command included); after that the revoke stays unconfirmed and alerting.
    retry_max_attempts: int = Field(default=8, ge=1)

    # --- expiry notices ---
    # Owner notices before expiry, as offsets before `expires_at`; each is sent once per expiry date.
    notice_offsets: tuple[timedelta, ...] = Field(default=(timedelta(days=7), timedelta(days=1)))

    # --- recertification policy ---
    # Recertification interval for human entitlements without their own interval (None: not required).
    recert_interval_human: timedelta | None = Field(default=timedelta(days=180))
    # Recertification interval for non-human identities' entitlements (None: not required).
    recert_interval_nhi: timedelta | None = Field(default=timedelta(days=90))
    # `recertification_due` is announced this long before the due date.
    recert_due_lead: timedelta = Field(default=timedelta(days=14))
    # Grace after the due date before `recertification_overdue` (RECERT_OVERDUE at the reconciler).
    recert_overdue_grace: timedelta = Field(default=timedelta(0))
    # Revoke automatically this long after the due date when still not recertified (None: alert only).
    recert_revoke_after: timedelta | None = Field(default=None)

    # --- triggers ---
    # Principal statuses that mean "offboarded": all of its entitlements are revoked.
    offboarded_statuses: tuple[PrincipalStatus, ...] = Field(
        default=(PrincipalStatus.DEACTIVATED, PrincipalStatus.DELETED)
    )

    def topic_specs(self) -> list[topics.TopicSpec]:
        """The topics this service reads and writes, as the registry declares them, under configured names."""
        by_name = {spec.name: spec for spec in topics.TOPICS}
        specs = []
        for default, name in (
            (topics.ITSM_TICKETS, self.tickets_topic),
            (topics.IAM_GRANTS, self.grants_topic),
            (topics.ENTITLEMENTS, self.entitlements_topic),
            (topics.PROVISIONING_COMMANDS, self.commands_topic),
        ):
            base = by_name[default]
            specs.append(topics.TopicSpec(name, base.retention_ms, base.compacted, base.has_dlq))
        for name in (self.tickets_topic, self.grants_topic):
            specs.append(topics.TopicSpec(topics.dlq(name), topics.DLQ_RETENTION_MS, has_dlq=False))
        return specs

    @field_validator("notice_offsets")
    @classmethod
    def _offsets(cls, value: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        if any(offset <= timedelta(0) for offset in value):
            raise ValueError("notice offsets must be positive durations before expiry")
        return tuple(sorted(set(value), reverse=True))

    @field_validator("retry_initial", "retry_max")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @model_validator(mode="after")
    def _retry_bounds(self) -> ExpirySettings:
        if self.retry_max < self.retry_initial:
            raise ValueError("retry_max must not be shorter than retry_initial")
        return self
