"""Prometheus metrics of the HTTP collector (served at /metrics on the collector's port).

With several worker processes (``collector.workers``) each worker writes its values to files in
a shared folder (prometheus_client's multiprocess mode) and whichever worker answers /metrics
adds them up, so a scrape sees the whole collector, not one random worker.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values

from playscope.events import DIMENSIONS, LOG_STRING_FIELDS, MEASURES

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Every label value comes from a fixed set: a client's input never makes a new series.
# ``reason`` of rejected items: a field of the contract, ``record`` (the item as a whole),
# ``kafka_refused`` (Kafka took it for good), or ``other``.
REASON_CLASSES: frozenset[str] = frozenset({
    "record", "other", "kafka_refused", "event_id", "session_id", "ts", "type", "from_kbps", "to_kbps",
    "error_code", "fatal", "service", "message", "level", "status", "latency_ms", "sid",
    *DIMENSIONS, *MEASURES, *LOG_STRING_FIELDS,
})
ENDPOINTS: frozenset[str] = frozenset({"events", "logs", "cmcd", "deadletter"})


def enable_multiprocess(directory: str) -> None:
    """Switch this process (and the workers it forks) to file-backed metric values."""
    os.environ[MULTIPROCESS_ENV] = directory
    values.ValueClass = values.MultiProcessValue()


class CollectorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # what /metrics renders: this registry, or the sum over every worker's files
        self.exposition = self.registry
        if os.environ.get(MULTIPROCESS_ENV) and values.ValueClass is not values.MutexValue:
            self.exposition = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.exposition)
        r = self.registry
        self.received = Counter(
            "playscope_collector_received_events_total", "Items received, by endpoint", ["endpoint"],
            registry=r,
        )
        self.sent = Counter(
            "playscope_collector_sent_events_total", "Items acknowledged by Kafka", ["endpoint"], registry=r
        )
        self.rejected = Counter(
            "playscope_collector_rejected_events_total",
            "Items rejected and dead-lettered, by reason class",
            ["endpoint", "reason"],
            registry=r,
        )
        self.errors = Counter(
            "playscope_collector_errors_total", "Requests refused, by error type", ["error_type"], registry=r
        )
        self.requests = Counter(
            "playscope_collector_requests_total", "Requests by endpoint and status", ["endpoint", "status"],
            registry=r,
        )
        self.produce_latency = Histogram(
            "playscope_collector_produce_latency_seconds",
            "Time from produce to Kafka acknowledgement of a request's batch",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.in_flight = Gauge(
            "playscope_collector_in_flight_requests", "Requests waiting for Kafka", registry=r,
            multiprocess_mode="livesum",
        )
        # each worker writes its own value when it changes; with several workers the scrape shows
        # the lowest, so 1 means every worker reaches Kafka
        self.broker_up = Gauge("playscope_collector_broker_up", "1 when Kafka is reachable", registry=r,
                               multiprocess_mode="livemin")
        self.spooled = Counter(
            "playscope_collector_spooled_events_total", "Items written to the on-disk spool", registry=r
        )
        self.replayed = Counter(
            "playscope_collector_replayed_events_total", "Spooled items Kafka acknowledged on replay",
            registry=r,
        )
        self.quarantined = Counter(
            "playscope_collector_spool_quarantined_events_total",
            "Spooled items Kafka refused for good, or in a segment that cannot be read, moved to quarantine/",
            registry=r,
        )
        self.produce_failed = Counter(
            "playscope_collector_produce_failed_events_total",
            "Items Kafka failed or did not acknowledge in time (then spooled, or refused with 503)",
            registry=r,
        )
