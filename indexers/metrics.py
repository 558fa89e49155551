"""Prometheus metrics of the indexer (one registry per indexer, the process one for the CLI)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IndexerMetrics:
    """Counters and gauges; labels are the index family and an error type, both low-cardinality."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.registry = reg
        self.received = Counter(
            "playscope_indexer_received_events_total", "Records read from Kafka", ["family"], registry=reg
        )
        self.sent = Counter(
            "playscope_indexer_sent_events_total",
            "Documents stored (created or overwritten) in the search backend",
            ["family"],
            registry=reg,
        )
        self.deadlettered = Counter(
            "playscope_indexer_deadlettered_events_total",
            "Records that could not be stored and went to the dead-letter topic",
            ["family", "error_type"],
            registry=reg,
        )
        self.stale = Counter(
            "playscope_indexer_stale_revisions_total",
            "Window records not stored because the index holds a newer revision (a replay re-sent them)",
            ["family"],
            registry=reg,
        )
        self.errors = Counter(
            "playscope_indexer_errors_total",
            "Errors by type, including retried ones",
            ["error_type"],
            registry=reg,
        )
        self.bulk_seconds = Histogram(
            "playscope_indexer_bulk_duration_seconds",
            "Duration of one bulk request",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=reg,
        )
        self.batch_docs = Histogram(
            "playscope_indexer_batch_documents",
            "Documents per batch",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000),
            registry=reg,
        )
        self.lag = Gauge(
            "playscope_indexer_consumer_lag",
            "Records in Kafka not yet committed by the indexer's group, per family (every partition, held or not)",
            ["family"],
            registry=reg,
        )
        self.broker_up = Gauge(
            "playscope_indexer_broker_up", "1 while the consumer reaches a Kafka broker", registry=reg
        )
        self.paused = Gauge(
            "playscope_indexer_paused", "1 while the consumer is paused by backpressure", registry=reg
        )
        self.pending_batches = Gauge(
            "playscope_indexer_pending_batches", "Batches read but not yet stored", registry=reg
        )
        self.retention_deleted = Counter(
            "playscope_indexer_retention_deleted_indices_total",
            "Daily indices deleted by retention",
            registry=reg,
        )

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when absent); used by tests and the benchmark."""
        got = self.registry.get_sample_value(name, labels or {})
        return float(got or 0.0)
