"""The service's Prometheus metrics: the shared set plus grant events by source and action."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from closeloop.contracts.base import Envelope
from closeloop.contracts.grants import GrantEvent
from closeloop.metrics import ServiceMetrics


class ConnectorMetrics(ServiceMetrics):
    def __init__(self, service: str = "connectors") -> None:
        super().__init__(service)
        self.grant_events = Counter(
            "closeloop_connector_events",
            "Events published by the connectors, by source system and action (grant, revoke, status)",
            ["service", "source_system", "action"],
            registry=self.registry,
        )
        self.link_conflicts = Counter(
            "closeloop_identity_link_conflicts",
            "Names seen together that the identity graph gives to different identities (not merged)",
            ["service", "origin"],
            registry=self.registry,
        )

    def count_events(self, events: Sequence[Envelope]) -> None:
        for event in events:
            if isinstance(event, GrantEvent):
                self.grant_events.labels(self.service, event.source_system, event.action.value).inc()
            else:
                self.grant_events.labels(self.service, getattr(event, "source_system", "unknown"), "status").inc()
