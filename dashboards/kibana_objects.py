"""The Kibana saved objects playscope ships: data views, visualizations and dashboards."""

from __future__ import annotations

from typing import Any

from dashboards.kibana_model import Vis, dashboard_object, data_view, m, over_time, split
from playscope.indices import FAMILIES

WIN = "window_start"

QOE_VIS = [
    Vis("playscope-qoe-attempts", "QoE: attempts and plays", "qoe", "histogram", "group:total",
        (m("1", "sum", "attempts"), m("2", "sum", "plays"), over_time("3", WIN)), "sessions"),
    Vis("playscope-qoe-rebuffer-by-cdn", "QoE: rebuffer ratio by CDN (mean of windows)", "qoe", "line", "group:cdn",
        (m("1", "avg", "rebuffer_ratio"), over_time("2", WIN), split("3", "cdn")), "rebuffer ratio"),
    Vis("playscope-qoe-failure-by-cdn", "QoE: failure rate by CDN (mean of windows)", "qoe", "line", "group:cdn",
        (m("1", "avg", "failure_rate"), over_time("2", WIN), split("3", "cdn")), "failure rate"),
    Vis("playscope-qoe-rebuffer-by-isp", "QoE: rebuffer ratio by ISP (mean of windows)", "qoe", "line", "group:isp",
        (m("1", "avg", "rebuffer_ratio"), over_time("2", WIN), split("3", "isp")), "rebuffer ratio"),
    Vis("playscope-qoe-by-device", "QoE: attempts, rebuffering and failures by device", "qoe", "table",
        "group:device",
        (m("1", "sum", "attempts"), m("2", "sum", "rebuffer_ms"), m("3", "sum", "watched_ms"),
         m("4", "sum", "vsf"), m("5", "sum", "vpf"), m("6", "sum", "ended"),
         split("7", "device", schema="bucket", size=20)), ""),
    Vis("playscope-qoe-by-country", "QoE: attempts, rebuffering and failures by country", "qoe", "table",
        "group:country",
        (m("1", "sum", "attempts"), m("2", "sum", "rebuffer_ms"), m("3", "sum", "watched_ms"),
         m("4", "sum", "vsf"), m("5", "sum", "vpf"), m("6", "sum", "ended"),
         split("7", "country", schema="bucket", size=50)), ""),
    Vis("playscope-qoe-startup", "QoE: startup time p50 / p95 (sessions)", "sessions", "line", "_exists_:startup_ms",
        (m("1", "percentiles", "startup_ms", percents=[50, 95]), over_time("2", "start_ts")), "ms"),
    Vis("playscope-qoe-outcomes", "QoE: session outcomes", "sessions", "pie", "*",
        (m("1", "count"), split("2", "outcome", schema="segment", size=5)), ""),
]

SERVICE_VIS = [
    Vis("playscope-svc-requests", "Services: requests by service", "service", "histogram", "group:service",
        (m("1", "sum", "requests"), over_time("2", WIN), split("3", "service", size=20)), "requests"),
    Vis("playscope-svc-error-rate", "Services: error rate by service (mean of windows)", "service", "line",
        "group:service",
        (m("1", "avg", "error_rate"), over_time("2", WIN), split("3", "service", size=20)), "error rate"),
    Vis("playscope-svc-latency-p95", "Services: latency p95 by service", "service", "line", "group:service",
        (m("1", "avg", "latency_ms_p95"), over_time("2", WIN), split("3", "service", size=20)), "ms"),
    Vis("playscope-svc-routes", "Services: routes", "service", "table", 'group:"service+route"',
        (m("1", "sum", "requests"), m("2", "sum", "errors"), m("3", "max", "latency_ms_p95"),
         m("4", "max", "latency_ms_p99"), split("5", "service", schema="bucket", size=20),
         split("6", "route", schema="bucket", size=50)), ""),
]

ALERT_VIS = [
    Vis("playscope-alerts-over-time", "Alerts: state changes over time", "alerts", "histogram", "*",
        (m("1", "count"), over_time("2", "ts"), split("3", "status", size=5)), "changes"),
    Vis("playscope-alerts-by-rule", "Alerts: firings by rule and group", "alerts", "table", "status:firing",
        (m("1", "count"), m("2", "max", "value"), split("3", "rule", schema="bucket", size=50),
         split("4", "group_key", schema="bucket", size=50)), ""),
    Vis("playscope-alerts-severity", "Alerts: firings by severity", "alerts", "pie", "status:firing",
        (m("1", "count"), split("2", "severity", schema="segment", size=5)), ""),
]

VISUALIZATIONS = QOE_VIS + SERVICE_VIS + ALERT_VIS


def saved_objects(index_prefix: str = "") -> list[dict[str, Any]]:
    """Data views first, then visualizations, then dashboards (the import resolves references
    within one file, but this order also reads well)."""
    objects = [data_view(name, index_prefix) for name in FAMILIES]
    objects += [vis.saved_object() for vis in VISUALIZATIONS]
    objects += [
        dashboard_object("playscope-qoe", "playscope / QoE overview",
                         "Attempts, rebuffering, failures and startup from the QoE windows and sessions.", QOE_VIS),
        dashboard_object("playscope-services", "playscope / service health",
                         "Requests, errors and latency from the service windows.", SERVICE_VIS),
        dashboard_object("playscope-alerts", "playscope / alerts timeline",
                         "Alert state changes from playscope-alerts-*.", ALERT_VIS, time_from="now-6h"),
    ]
    return objects
