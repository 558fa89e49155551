"""Self-monitoring: each long-running component serves Prometheus /metrics on its own port."""

from __future__ import annotations

import logging
import os

from prometheus_client import start_http_server

from playscope.logs import log_event

log = logging.getLogger("playscope.metrics")

# Default /metrics ports per component (override per section: metrics_port).
DEFAULT_METRICS_PORTS: dict[str, int] = {
    "collector": 8080,  # served on the collector's own HTTP port at /metrics
    "agent": 9181,
    "streams": 9182,
    "indexer": 9183,
    "alerts": 9184,
}


def serve_metrics(component: str, port: int | None, host: str | None = None) -> int:
    """Start the /metrics endpoint in a background thread; 0 picks a free port. Returns the port.

    Loopback by default; PLAYSCOPE_METRICS_HOST=0.0.0.0 exposes it (containers)."""
    host = host or os.environ.get("PLAYSCOPE_METRICS_HOST", "127.0.0.1")
    chosen = DEFAULT_METRICS_PORTS[component] if port is None else port
    server, _thread = start_http_server(chosen, addr=host)
    actual = int(server.server_port)
    log_event(log, "metrics.serving", component=component, port=actual)
    return actual
