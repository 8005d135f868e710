"""The worker's Prometheus metrics, in a registry of its own (several workers per process in
tests must not collide in the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from verihook.delivery.queue import QueueStats

__all__ = ["WorkerMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.queue_depth = Gauge(
            "verihook_delivery_queue_depth",
            "Deliveries by queue state (pending = not finished; due = claimable now).",
            ["state"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "verihook_delivery_attempts",
            "Delivery attempts by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "verihook_delivery_attempt_seconds",
            "HTTP time of one attempt.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "verihook_delivery_latency_seconds",
            "From the event's commit to its 2xx being recorded.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.endpoints = Gauge(
            "verihook_endpoints",
            "Endpoints whose circuit is open, and disabled endpoints.",
            ["state"],
            registry=self.registry,
        )

    def observe_stats(self, stats: QueueStats) -> None:
        self.queue_depth.labels("pending").set(stats.pending)
        self.queue_depth.labels("due").set(stats.due)
        self.queue_depth.labels("in_flight").set(stats.in_flight)
        self.queue_depth.labels("failed").set(stats.failed)
        self.endpoints.labels("open").set(stats.endpoints_open)
        self.endpoints.labels("disabled").set(stats.endpoints_disabled)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
