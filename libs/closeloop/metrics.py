"""Prometheus metrics every service exposes: events in and out, dead letters, lag, latency.

Each service owns a registry (not the process-global one) so several services can run in one process
in tests without clashing.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.events_in = Counter(
            "closeloop_events_in", "Records received, by input", ["service", "input"], registry=self.registry
        )
        self.events_out = Counter(
            "closeloop_events_out", "Events published, by topic", ["service", "topic"], registry=self.registry
        )
        self.dead_letters = Counter(
            "closeloop_dead_letters",
            "Inputs sent to a dead-letter topic, by input and reason class",
            ["service", "input", "reason"],
            registry=self.registry,
        )
        self.skipped = Counter(
            "closeloop_skipped",
            "Valid inputs that carry nothing to act on (counted, not errors)",
            ["service", "input", "why"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "closeloop_duplicates",
            "Inputs recognised as already processed",
            ["service", "input"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "closeloop_consumer_lag",
            "Records between the consumer position and the partition end",
            ["service", "topic", "partition"],
            registry=self.registry,
        )
        self.processing_seconds = Histogram(
            "closeloop_processing_seconds",
            "Time from receiving an input to acknowledging it",
            ["service", "input"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.errors = Counter(
            "closeloop_transient_errors",
            "Transient failures (broker or database unavailable) that were retried",
            ["service", "stage"],
            registry=self.registry,
        )

    def received(self, input_name: str) -> None:
        self.events_in.labels(self.service, input_name).inc()

    def published(self, topic: str, count: int = 1) -> None:
        self.events_out.labels(self.service, topic).inc(count)

    def dead_lettered(self, input_name: str, reason_class: str) -> None:
        self.dead_letters.labels(self.service, input_name, reason_class).inc()

    def skip(self, input_name: str, why: str) -> None:
        self.skipped.labels(self.service, input_name, why).inc()

    def duplicate(self, input_name: str) -> None:
        self.duplicates.labels(self.service, input_name).inc()

    def observe(self, input_name: str, seconds: float) -> None:
        self.processing_seconds.labels(self.service, input_name).observe(seconds)

    def transient(self, stage: str) -> None:
        self.errors.labels(self.service, stage).inc()
