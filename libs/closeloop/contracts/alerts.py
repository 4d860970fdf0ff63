"""Drift rule codes and the alert record on `drift.alerts.v1`.

The codes are stable: alerts, tests and dashboards use them. The alert document itself (an OCSF Detection
Finding) is built by reconciliation; the ids, headers and the headline model below are shared so every
consumer reads alerts the same way.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DriftRule(StrEnum):
    UNTICKETED_GRANT = "UNTICKETED_GRANT"
    CLOSED_NOT_REMOVED = "CLOSED_NOT_REMOVED"
    EXPIRED_STILL_LIVE = "EXPIRED_STILL_LIVE"
    REVOKE_UNCONFIRMED = "REVOKE_UNCONFIRMED"
    SCOPE_EXCEEDS_APPROVAL = "SCOPE_EXCEEDS_APPROVAL"
    NO_OWNER = "NO_OWNER"
    NO_EXPIRY = "NO_EXPIRY"
    RECERT_OVERDUE = "RECERT_OVERDUE"
    EXCEPTION_EXPIRED = "EXCEPTION_EXPIRED"
    GRANT_TO_INACTIVE_PRINCIPAL = "GRANT_TO_INACTIVE_PRINCIPAL"
    STALE_CREDENTIAL = "STALE_CREDENTIAL"
    FULFILMENT_MISSING = "FULFILMENT_MISSING"
    UNREVIEWED_AUTOMATED_CHANGE = "UNREVIEWED_AUTOMATED_CHANGE"
    # Operational: an input stream's watermark stopped advancing, so absence rules waiting on it are held.
    INPUT_STALLED = "INPUT_STALLED"


class Severity(StrEnum):
    """OCSF severity names; `SEVERITY_ID` maps them to OCSF `severity_id`."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_ID: dict[Severity, int] = {Severity.LOW: 2, Severity.MEDIUM: 3, Severity.HIGH: 4, Severity.CRITICAL: 5}

DEFAULT_SEVERITY: dict[DriftRule, Severity] = {
    DriftRule.UNTICKETED_GRANT: Severity.HIGH,
    DriftRule.CLOSED_NOT_REMOVED: Severity.HIGH,
    DriftRule.EXPIRED_STILL_LIVE: Severity.HIGH,
    DriftRule.REVOKE_UNCONFIRMED: Severity.HIGH,
    DriftRule.SCOPE_EXCEEDS_APPROVAL: Severity.HIGH,
    DriftRule.NO_OWNER: Severity.MEDIUM,
    DriftRule.NO_EXPIRY: Severity.MEDIUM,
    DriftRule.RECERT_OVERDUE: Severity.MEDIUM,
    DriftRule.EXCEPTION_EXPIRED: Severity.CRITICAL,
    DriftRule.GRANT_TO_INACTIVE_PRINCIPAL: Severity.HIGH,
    DriftRule.STALE_CREDENTIAL: Severity.MEDIUM,
    DriftRule.FULFILMENT_MISSING: Severity.LOW,
    DriftRule.UNREVIEWED_AUTOMATED_CHANGE: Severity.HIGH,
    # High: no access changed, but while an input is stalled every absence rule waiting on it is silent, so
    # drift (an unticketed grant, a revoke that never happened) goes undetected until someone restarts it.
    DriftRule.INPUT_STALLED: Severity.HIGH,
}


# --- the alert record on `drift.alerts.v1` -------------------------------------------------------------------
#
# The value is an OCSF Detection Finding (class 2004) document; the key is the entitlement key; the envelope
# travels as CloudEvents `ce_*` headers. Consumers deduplicate on the event id (`ce_id` = OCSF
# `metadata.uid`), which is deterministic per (finding uid, activity, revision), and group on the finding uid
# (`finding_info.uid`), which is deterministic per (entitlement key, rule code).

OCSF_VERSION = "1.7.0"
DETECTION_FINDING_CLASS_UID = 2004
ALERT_EVENT_TYPE = "drift.alert.changed"
ALERT_SCHEMA_VERSION = 1

# Namespace of every id derived for alerts; changing it would change every finding uid.
ALERT_NAMESPACE = uuid.UUID("6f1c2a4e-9a57-5d0c-8f0e-2b5d7c1e4a90")


class AlertActivity(IntEnum):
    """OCSF Finding `activity_id`."""

    CREATE = 1
    UPDATE = 2
    CLOSE = 3


class AlertStatus(IntEnum):
    """OCSF Finding `status_id` values closeloop sets."""

    NEW = 1
    RESOLVED = 4


RULE_TITLES: dict[DriftRule, str] = {
    DriftRule.UNTICKETED_GRANT: "Live grant without an approved ticket",
    DriftRule.CLOSED_NOT_REMOVED: "Access still live after its ticket closed",
    DriftRule.EXPIRED_STILL_LIVE: "Expired entitlement still live at the source",
    DriftRule.REVOKE_UNCONFIRMED: "Revoke not confirmed by the source",
    DriftRule.SCOPE_EXCEEDS_APPROVAL: "Granted privilege broader than approved",
    DriftRule.NO_OWNER: "Entitlement without an active owner",
    DriftRule.NO_EXPIRY: "Standing privilege without expiry",
    DriftRule.RECERT_OVERDUE: "Recertification overdue",
    DriftRule.EXCEPTION_EXPIRED: "Exception access outlived its window",
    DriftRule.GRANT_TO_INACTIVE_PRINCIPAL: "Grant to an inactive identity",
    DriftRule.STALE_CREDENTIAL: "Non-human credential older than rotation policy",
    DriftRule.FULFILMENT_MISSING: "Ticket fulfilled but no grant appeared",
    DriftRule.UNREVIEWED_AUTOMATED_CHANGE: "Automated identity change without human-approved ticket",
    DriftRule.INPUT_STALLED: "Input stream stalled; absence rules held",
}


def finding_uid(entitlement_key: str, rule: DriftRule | str) -> str:
    """The one finding id of (entitlement key, rule): every consumer can group on it."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"finding|{entitlement_key}|{DriftRule(rule).value}"))


def alert_event_id(uid: str, activity: AlertActivity | int, revision: int) -> str:
    """Deterministic id of one emitted alert record: the same decision after a restart gets the same id."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"event|{uid}|{int(activity)}|{revision}"))


class DriftAlert(BaseModel):
    """The headline of an alert record, read back from its OCSF document (for CLIs, sinks and tests).

    The OCSF document is the contract on the wire; this model reads the fields closeloop always sets and
    ignores the rest (the document is a superset).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(description="Deterministic record id (OCSF `metadata.uid`, `ce_id`).")
    finding_uid: str = Field(description="Deterministic finding id per (entitlement key, rule).")
    rule: DriftRule = Field(description="Drift rule code.")
    activity: AlertActivity = Field(description="Create, Update or Close.")
    status: AlertStatus = Field(description="New while the condition holds, Resolved once it cleared.")
    revision: int = Field(ge=1, description="Revision of the finding; +1 per emitted record.")
    severity_id: int = Field(ge=0, le=99, description="OCSF severity id.")
    entitlement_key: str = Field(description="The entitlement the finding is about (also the Kafka key).")
    message: str = Field(description="One-line description.")
    time: datetime = Field(description="When the reconciler decided this change.")
    tickets: tuple[str, ...] = Field(default=(), description="Ticket numbers named by the finding.")

    @classmethod
    def from_ocsf(cls, document: dict[str, Any]) -> DriftAlert:
        info = document["finding_info"]
        closeloop = document.get("unmapped", {}).get("closeloop", {})
        return cls(
            event_id=document["metadata"]["uid"],
            finding_uid=info["uid"],
            rule=closeloop["rule"],
            activity=document["activity_id"],
            status=document["status_id"],
            revision=closeloop["revision"],
            severity_id=document["severity_id"],
            entitlement_key=closeloop["entitlement_key"],
            message=document.get("message", ""),
            time=datetime.fromtimestamp(document["time"] / 1000, tz=UTC),
            tickets=tuple(t.get("uid", "") for t in document.get("tickets", ()) if isinstance(t, dict)),
        )


def parse_alert(value: bytes) -> tuple[DriftAlert, dict[str, Any]]:
    """Decode an alert record's value into its headline and the full OCSF document; ValueError if it is not one."""
    try:
        document = json.loads(value)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a closeloop drift alert: {exc}") from exc
    if not isinstance(document, dict) or document.get("class_uid") != DETECTION_FINDING_CLASS_UID:
        raise ValueError("not a closeloop drift alert: not an OCSF Detection Finding")
    try:
        return DriftAlert.from_ocsf(document), document
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a closeloop drift alert: {type(exc).__name__}: {exc}") from exc


def alert_headers(alert: DriftAlert, *, source: str, correlation_id: str | None = None) -> list[tuple[str, bytes]]:
    """CloudEvents 1.0 binary-mode headers of an alert record, plus closeloop's alert extension attributes."""
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", alert.event_id.encode()),
        ("ce_type", ALERT_EVENT_TYPE.encode()),
        ("ce_source", source.encode()),
        ("ce_time", alert.time.isoformat().encode()),
        ("ce_subject", alert.entitlement_key.encode()),
        ("ce_schemaversion", str(ALERT_SCHEMA_VERSION).encode()),
        ("ce_dataschema", f"https://schema.ocsf.io/{OCSF_VERSION}/classes/detection_finding".encode()),
        ("ce_correlationid", (correlation_id or alert.finding_uid).encode()),
        ("ce_findinguid", alert.finding_uid.encode()),
        ("ce_rule", alert.rule.value.encode()),
        ("ce_activity", alert.activity.name.lower().encode()),
        ("content-type", b"application/json"),
    ]
    return headers
