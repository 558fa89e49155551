"""The agent's self-monitoring, in one place for the agent loop and its sinks (port
``metrics_port``). ``error_type`` takes only the values of :data:`ERROR_TYPES`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ERROR_TYPES = ("parse", "exception", "delivery", "refused", "deadletter_refused", "collector_rejected",
               "collector_too_large", "deadletter_file")

RECEIVED = Counter("playscope_agent_received_events_total", "Records read from files")
SENT = Counter("playscope_agent_sent_events_total", "Records confirmed by the sink")
DISCARDED = Counter("playscope_agent_discarded_events_total", "Lines dead-lettered (unparseable, invalid, too large)")
ERRORS = Counter("playscope_agent_errors_total", "Errors by type", ["error_type"])
IN_FLIGHT = Gauge("playscope_agent_in_flight_batches", "Batches waiting for confirmation")
BROKER_UP = Gauge("playscope_agent_broker_up",
                  "1 when the sink reaches Kafka (the http sink: when the collector accepts)")
DEADLETTER_FILE = Counter("playscope_agent_deadletter_file_records_total",
                          "Dead letters the http sink wrote to its local file (the collector takes none)")

for _error_type in ERROR_TYPES:
    ERRORS.labels(_error_type)
