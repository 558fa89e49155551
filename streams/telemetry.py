"""Prometheus metrics of a streams worker (names per ENGINEERING.md: *_total counters)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECEIVED = Counter("playscope_streams_received_events_total", "Records consumed", ["stream"])
ERRORS = Counter("playscope_streams_errors_total", "Records rejected or failures", ["error_type"])
DISCARDED = Counter("playscope_streams_discarded_events_total", "Records not used", ["reason"])
LATE = Counter("playscope_streams_late_events_total", "Records whose window had closed", ["stream"])
SESSIONS_EMITTED = Counter("playscope_streams_sessions_emitted_total", "Session summaries sent")
WINDOWS_EMITTED = Counter("playscope_streams_windows_emitted_total", "Window records sent", ["stream"])
WINDOWS_REVISED = Counter(
    "playscope_streams_windows_revised_total", "Window records emitted again with a higher revision", ["stream"]
)
OPEN_SESSIONS = Gauge("playscope_streams_open_sessions", "Sessions open on this worker")
CONSUMER_LAG = Gauge(
    "playscope_streams_consumer_lag",
    "Records the worker group has not committed, every partition (held or not), against the last stable offset",
    ["topic"],
)
BROKER_UP = Gauge("playscope_streams_broker_up", "1 while the worker reaches a Kafka broker")
BATCH_SECONDS = Histogram(
    "playscope_streams_batch_processing_seconds",
    "Time to process one batch",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENT_AGE = Histogram(
    "playscope_streams_processing_latency_seconds",
    "From a record's Kafka timestamp to the end of its batch",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
