"""An in-memory ingestion (memory ledger and sink) for unit tests of the ingress paths."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.ingest_records import IngestRecords
from connectors.metrics import ConnectorMetrics
from connectors.registry import CONNECTORS
from connectors.sink import MemorySink
from connectors.stores import InMemoryLedger
from tests.unit.connectors.support import context


@dataclass
class MemoryIngestion:
    ingest: IngestRecords
    ledger: InMemoryLedger
    sink: MemorySink
    metrics: ConnectorMetrics


def memory_ingestion() -> MemoryIngestion:
    ledger, sink, metrics = InMemoryLedger(), MemorySink(), ConnectorMetrics()
    return MemoryIngestion(IngestRecords(CONNECTORS, ledger, sink, metrics, context), ledger, sink, metrics)


def metric(metrics: ConnectorMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, {"service": "connectors", **labels})
    return value or 0.0
