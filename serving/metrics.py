"""Prometheus metrics of one server instance (its own registry: two apps in one process never mix)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class ServingMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("flywheel_requests", "HTTP requests by route and status code",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("flywheel_completion_latency_seconds", "Chat completion latency, arrival to last token",
                                 ["adapter", "stream"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.tokens = Counter("flywheel_tokens", "Tokens processed", ["kind"], registry=self.registry)
        self.batch_size = Histogram("flywheel_batch_size", "Requests per generate call", buckets=BATCH_BUCKETS,
                                    registry=self.registry)
        self.cancelled = Counter("flywheel_generations_cancelled", "Generations stopped because the client left",
                                 registry=self.registry)
        self.in_flight = Gauge("flywheel_requests_in_flight", "Chat completions admitted and not finished",
                               registry=self.registry)
        self.spool_errors = Counter("flywheel_spool_errors", "Records the spool could not write (disk full, ...)",
                                    registry=self.registry)
        self.feedback = Counter("flywheel_feedback", "Feedback records accepted", ["kind"], registry=self.registry)
        self.production = Gauge("flywheel_production_adapter", "1 for the adapter version serving `production`",
                                ["version"], registry=self.registry)

    def set_production(self, version: str) -> None:
        self.production.clear()
        self.production.labels(version=version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
