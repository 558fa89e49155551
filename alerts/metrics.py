"""Prometheus metrics of the alert evaluator (served on /metrics, default port 9184)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECEIVED = Counter("playscope_alerts_received_events_total", "Window records consumed", ["source"])
SENT = Counter("playscope_alerts_sent_events_total", "Alert state changes written", ["status"])
DISCARDED = Counter(
    "playscope_alerts_discarded_events_total", "Window records not evaluated (dead-lettered)", ["reason"]
)
ERRORS = Counter("playscope_alerts_errors_total", "Errors, by type", ["error_type"])
NOTIFICATIONS = Counter(
    "playscope_alerts_notifications_total", "Notifications delivered", ["channel_type", "status"]
)
NOTIFICATION_FAILURES = Counter(
    "playscope_alerts_notification_failures_total", "Failed delivery attempts (retried)", ["channel_type"]
)
FIRING = Gauge("playscope_alerts_firing", "Rule and group pairs currently firing")
PENDING = Gauge("playscope_alerts_pending_notifications", "Deliveries waiting to succeed")
BROKER_UP = Gauge("playscope_alerts_broker_up", "1 when the evaluator's producer and consumer reach Kafka")
LAG = Gauge(
    "playscope_alerts_consumer_lag",
    "Window records in Kafka not yet read (0 once the consumer reached the end of every partition)",
    ["source"],
)
