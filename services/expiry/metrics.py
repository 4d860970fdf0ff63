"""Expiry's own Prometheus metrics, registered next to the shared service metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from closeloop.metrics import ServiceMetrics

SERVICE = "expiry"


class ExpiryMetrics(ServiceMetrics):
    def __init__(self, service: str = SERVICE) -> None:
        super().__init__(service)
        self.actions = Counter(
            "closeloop_expiry_actions",
            "Record changes and commands made by expiry, by action (revoke_issued, expiry_notice, ...) and trigger",
            ["service", "action", "trigger"],
            registry=self.registry,
        )
        self.sweep_seconds = Histogram(
            "closeloop_expiry_sweep_seconds",
            "Duration of one sweep phase",
            ["service", "phase"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.last_sweep = Gauge(
            "closeloop_expiry_last_sweep_timestamp_seconds",
            "Unix time the last complete sweep finished",
            ["service"],
            registry=self.registry,
        )
        self.revokes_given_up = Counter(
            "closeloop_expiry_revokes_given_up",
            "Unconfirmed revokes whose retry attempts are used up (the alert stays open)",
            ["service"],
            registry=self.registry,
        )

    def action(self, action: str, trigger: str = "", count: int = 1) -> None:
        if count:
            self.actions.labels(self.service, action, trigger).inc(count)
