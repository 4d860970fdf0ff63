"""Settings of the reconciliation service (env prefix `CLOSELOOP_RECONCILIATION_`).

Durations accept seconds (`900`) or ISO 8601 (`PT15M`, `P90D`); lists accept JSON
(`[["read","write","admin"]]`). The webhook secret is `CLOSELOOP_ALERTS_WEBHOOK_SECRET` (shared with SOC
consumers that verify the signatures), never logged.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from closeloop import topics
from closeloop.contracts.alerts import OCSF_VERSION
from closeloop.settings import ServiceSettings
from closeloop.shared_secrets import OptionalWebhookSecret

# Privilege orders, weakest first. Two privileges are comparable when one chain holds both; the first such
# chain decides. A grant is covered by an approval of the same or a stronger privilege on the same resource.
DEFAULT_PRIVILEGE_ORDER: tuple[tuple[str, ...], ...] = (
    ("read", "triage", "write", "maintain", "admin"),  # GitHub repositories
    ("read", "write", "admin"),
    ("member", "maintainer", "owner"),  # GitHub teams, generic groups
    ("member", "admin"),  # GitHub organisations
    ("viewer", "editor", "owner"),
    ("reader", "contributor", "owner"),
)

# Resources (fnmatch patterns over the canonical resource) whose entitlements must carry an expiry.
DEFAULT_EXPIRY_REQUIRED_RESOURCES: tuple[str, ...] = (
    "okta:adminrole:*",
    "entra:role:*",
    "aws:policy:*AdministratorAccess",
    "k8s:clusterrole:cluster-admin",
    "vault:policy:root",
)


class ReconciliationSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLOSELOOP_RECONCILIATION_", extra="ignore", frozen=True, populate_by_name=True
    )

    # Ops server (health, readiness, metrics) port; faust's own web server stays off.
    ops_port: int = Field(default=8484, ge=0, le=65535)
    # faust application id: the consumer group, and the prefix of the join topic and the table changelogs.
    # Every reconciler worker of one deployment uses the same id; tests use unique ones.
    app_id: str = Field(default="closeloop-reconciliation", min_length=1, max_length=200)
    # faust's working folder (it keeps no table data there: tables live in memory and in their changelog topics);
    # default `<state dir>/reconciliation/<app_id>`.
    data_dir: Path | None = Field(default=None)
    # Source name in the envelope headers of every alert this service emits.
    event_source: str = Field(default="closeloop/reconciliation")

    # --- topics (overridable so tests use unique names) ---
    # Ticket events from request-intake.
    tickets_topic: str = Field(default=topics.ITSM_TICKETS)
    # Grant, principal-status and snapshot events from the IAM connectors.
    grants_topic: str = Field(default=topics.IAM_GRANTS)
    # Entitlement record events from provisioning and expiry (compacted).
    entitlements_topic: str = Field(default=topics.ENTITLEMENTS)
    # Where drift alerts (OCSF Detection Findings) go.
    alerts_topic: str = Field(default=topics.DRIFT_ALERTS)
    # Partitions of the internal join topic and of the table changelogs (the unit of parallelism of the join).
    # Changing it on a live deployment needs a new app_id (the state is partitioned by it).
    join_partitions: int = Field(default=3, ge=1, le=1000)

    # Records per alerts partition read back after every (re)assignment, so alerts a crashed worker had
    # already published are not published again; must exceed the alerts of one commit interval.
    ledger_tail_records: int = Field(default=20_000, ge=100, le=1_000_000)

    # --- processing ---
    # Inputs handled per batch by the join agent; alerts of a batch are acknowledged by the broker before the
    # join state of the batch is written, so a crash repeats alerts (same ids) but never loses one.
    batch_max: int = Field(default=500, ge=1, le=10_000)
    # Longest wait (seconds) for a batch to fill; bounds the latency added under light load.
    batch_within_s: float = Field(default=0.005, gt=0, le=1.0)
    # Seconds between deadline checks (grace windows, expiry, recertification, rotation age, settle).
    timer_interval_s: float = Field(default=0.25, gt=0, le=60)
    # A finding opens only once its key has been quiet this long (processing time): the three input topics
    # are consumed independently, so the ticket that approves a grant may reach the join a moment after the
    # grant does. Updates and closes are not delayed.
    join_settle: timedelta = Field(default=timedelta(milliseconds=300))
    # A deadline tick not answered within this many seconds is sent again.
    tick_retry_s: float = Field(default=30.0, gt=0)
    # Seconds between full rebuilds of the in-memory deadline index from the local join state.
    deadline_rescan_s: float = Field(default=60.0, gt=0)
    # Producer batch size in bytes: alert documents are a few KiB each, so the client default (16 KiB, three
    # alerts) would make every burst of alerts wait on one round trip per three.
    producer_batch_bytes: int = Field(default=1_048_576, ge=16_384, le=16_777_216)
    # Consumer group session timeout (seconds): how long a crashed worker's partitions wait before another
    # worker (or its restart) takes them over.
    session_timeout_s: float = Field(default=10.0, ge=6.0, le=300.0)
    # faust commit interval (seconds): input offsets are committed after the effects are flushed.
    commit_interval_s: float = Field(default=1.0, gt=0, le=60)
    # Tickets kept per entitlement (most recent first); older ones are dropped from the join state.
    max_tickets_per_key: int = Field(default=20, ge=1, le=1000)

    # --- input watermarks (see watermarks.py) ---
    # Inputs whose watermarks (progress records from request-intake / the connectors) gate the findings about
    # something missing; empty: absence is judged by the clock alone, as soon as the grace window ends.
    watermark_inputs: tuple[str, ...] = Field(default=("tickets", "grants"))
    # The ITSM's own delay between a ticket changing and the webhook reaching request-intake: a missing
    # ticket is judged only once the tickets watermark passed the grace window's end plus this.
    itsm_delivery_allowance: timedelta = Field(default=timedelta(seconds=30))
    # The same for IAM vendors (event hooks, log delivery) before a grant reaches a connector.
    iam_delivery_allowance: timedelta = Field(default=timedelta(0))
    # A tracked input whose watermark lags processing time by more than this raises one INPUT_STALLED.
    input_stall_limit: timedelta = Field(default=timedelta(minutes=5))
    # A producer (request-intake or connector instance) silent this long is no longer waited for (a replica
    # that crashed and never came back); until then it holds the stream's watermark.
    watermark_producer_expiry: timedelta = Field(default=timedelta(minutes=15))
    # A finding held for a watermark is re-checked at least this often even without a progress record.
    watermark_hold_recheck: timedelta = Field(default=timedelta(seconds=30))
    # Seconds between INPUT_STALLED checks.
    input_watch_interval_s: float = Field(default=1.0, gt=0, le=60)

    # --- rule policy ---
    # A manual grant may precede its approval by this long before UNTICKETED_GRANT fires.
    grant_before_approval_grace: timedelta = Field(default=timedelta(minutes=10))
    # A closed revocation / offboarding ticket (or cancelled request) leaves the grant this long before
    # CLOSED_NOT_REMOVED fires.
    closed_removal_grace: timedelta = Field(default=timedelta(minutes=15))
    # A fulfilled ticket waits this long for its grant before FULFILMENT_MISSING fires.
    fulfilment_grace: timedelta = Field(default=timedelta(minutes=30))
    # NO_OWNER / NO_EXPIRY judge a live grant by its approving ticket alone only after this long without an
    # entitlement record (provisioning writes the record right after the grant; this avoids flapping alerts).
    record_settle_grace: timedelta = Field(default=timedelta(minutes=5))
    # Time after expires_at (or an exception window's end) before EXPIRED_STILL_LIVE / EXCEPTION_EXPIRED fire;
    # expiry revokes at the deadline and the source needs a moment to confirm.
    expiry_grace: timedelta = Field(default=timedelta(minutes=5))
    # Grace after a recertification due date before RECERT_OVERDUE fires from the record's due date alone
    # (expiry's own `recertification_overdue` change fires it at once).
    recert_grace: timedelta = Field(default=timedelta(0))
    # Rotation policy: an NHI credential older than this is stale (STALE_CREDENTIAL).
    credential_max_age: timedelta = Field(default=timedelta(days=90))
    # Privilege orders for SCOPE_EXCEEDS_APPROVAL, weakest first (see DEFAULT_PRIVILEGE_ORDER).
    privilege_order: tuple[tuple[str, ...], ...] = Field(default=DEFAULT_PRIVILEGE_ORDER)
    # NO_EXPIRY: resources (fnmatch patterns) whose entitlements must carry an expiry.
    expiry_required_resources: tuple[str, ...] = Field(default=DEFAULT_EXPIRY_REQUIRED_RESOURCES)
    # NO_EXPIRY: privileges that must carry an expiry on any resource (standing privilege).
    expiry_required_privileges: tuple[str, ...] = Field(default=("admin", "owner"))
    # NO_EXPIRY: whether every non-human identity's entitlement must carry an expiry.
    expiry_required_for_nhi: bool = Field(default=False)
    # NO_OWNER applies to non-human identities only (`nhi`) or to every entitlement (`all`).
    owner_required_for: str = Field(default="nhi", pattern="^(nhi|all)$")

    # --- OCSF ---
    # Pinned OCSF schema version of the emitted Detection Findings.
    ocsf_version: str = Field(default=OCSF_VERSION)

    # --- SOC webhook sink (off unless a URL is set) ---
    # HTTPS endpoint that receives every alert, signed per Standard Webhooks; empty: no webhook delivery.
    webhook_url: str | None = Field(default=None)
    # Signing secret (`whsec_...` base64); read from CLOSELOOP_ALERTS_WEBHOOK_SECRET.
    webhook_secret: OptionalWebhookSecret = Field(
        default=None,
        validation_alias=AliasChoices("CLOSELOOP_ALERTS_WEBHOOK_SECRET", "CLOSELOOP_RECONCILIATION_WEBHOOK_SECRET"),
    )
    # Consumer group of the webhook sink (its offsets are independent of the reconciler's).
    webhook_group_id: str = Field(default="closeloop-alerts-webhook")
    # Delivery attempts per alert before it goes to `<alerts topic>.dlq`.
    webhook_max_attempts: int = Field(default=6, ge=1, le=50)
    # Per-request timeout (seconds).
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # Upper bound (seconds) of the exponential backoff between attempts.
    webhook_max_backoff_s: float = Field(default=30.0, gt=0)

    @field_validator("privilege_order")
    @classmethod
    def _orders(cls, value: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        normalised = tuple(tuple(p.strip().lower() for p in chain) for chain in value)
        for chain in normalised:
            if len(chain) < 2 or len(set(chain)) != len(chain) or not all(chain):
                raise ValueError("each privilege order needs two or more distinct, non-empty privileges")
        return normalised

    @field_validator("expiry_required_privileges")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(p.strip().lower() for p in value)

    @field_validator(
        "grant_before_approval_grace",
        "closed_removal_grace",
        "fulfilment_grace",
        "record_settle_grace",
        "expiry_grace",
        "recert_grace",
        "join_settle",
        "itsm_delivery_allowance",
        "iam_delivery_allowance",
    )
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value

    @field_validator("watermark_inputs")
    @classmethod
    def _inputs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - {"tickets", "grants"}
        if unknown:
            raise ValueError(f"watermark inputs are tickets and/or grants, not {sorted(unknown)}")
        return value

    @field_validator("credential_max_age", "input_stall_limit", "watermark_producer_expiry", "watermark_hold_recheck")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value
