"""The Kafka record of one alert: key = entitlement key, value = OCSF Detection Finding JSON, envelope as ce_* headers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from closeloop.contracts.alerts import DriftAlert, alert_headers
from reconciliation.join_engine import Emission
from reconciliation.ocsf import build_finding


def product_version() -> str:
    try:
        return version("closeloop")
    except PackageNotFoundError:
        return "0.0.0"


@dataclass(frozen=True)
class AlertRecord:
    event_id: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class AlertEncoder:
    ocsf_version: str
    source: str
    log_name: str
    data_sources: tuple[str, ...]
    product: str = product_version()

    def encode(self, emission: Emission) -> AlertRecord:
        document = build_finding(
            emission,
            version=self.ocsf_version,
            product_version=self.product,
            log_name=self.log_name,
            data_sources=self.data_sources,
        )
        change = emission.change
        # Trusted, just-built values: construct the headline without re-validating the document.
        headline = DriftAlert.model_construct(
            event_id=change.event_id,
            finding_uid=change.uid,
            rule=change.rule,
            activity=change.activity,
            status=change.status,
            revision=change.revision,
            severity_id=document["severity_id"],
            entitlement_key=change.key,
            message=document["message"],
            time=datetime.fromtimestamp(document["time"] / 1000, tz=UTC),
            tickets=tuple(t["uid"] for t in document.get("tickets", ())),
        )
        trigger = emission.view.trigger
        headers = alert_headers(
            headline, source=self.source, correlation_id=trigger.correlation_id if trigger else None
        )
        return AlertRecord(
            event_id=headline.event_id,
            key=emission.change.key.encode(),
            value=json.dumps(document, separators=(",", ":")).encode(),
            headers=headers,
        )
