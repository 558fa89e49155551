"""The four Grafana dashboards: QoE overview, service health, pipeline health, alerts timeline.

Window records carry a ``group`` field (SPEC 7-8), so every window panel filters on the exact
group it reads (``group:cdn``, ``group:service+route``...): without it a "by CDN" panel would
also sum the ``cdn+country`` records and count every session twice. Ratios are computed from
summed numerators and denominators (a ``bucket_script``), never as a mean of per-window ratios.
"""

from __future__ import annotations

from collections.abc import Callable

from dashboards.grafana_model import (
    ES_ALERTS,
    ES_SESSIONS,
    ES_WINDOWS,
    Layout,
    alert_annotation,
    dashboard,
    date_hist,
    es_target,
    everything,
    failure_ratio,
    metric,
    prom_target,
    ratio,
    stat,
    table,
    terms,
    timeseries,
)

QOE_DIMENSIONS = ("cdn", "isp", "device", "country")
WIN = "window_start"


def _q(group: str) -> str:
    """The query_string that selects one window group; ``+`` must be escaped in Lucene syntax."""
    return f'group:"{group}"' if "+" in group else f"group:{group}"


def _rebuffer_ratio_target(group: str, buckets: list[dict], alias: str = "") -> dict:
    return es_target(
        ES_WINDOWS,
        _q(group),
        [metric("1", "sum", "rebuffer_ms", hide=True), metric("2", "sum", "watched_ms", hide=True),
         ratio("3", "1", "2")],
        buckets,
        alias=alias,
    )


def _failure_rate_target(group: str, buckets: list[dict], alias: str = "") -> dict:
    return es_target(
        ES_WINDOWS,
        _q(group),
        [metric("1", "sum", "vsf", hide=True), metric("2", "sum", "vpf", hide=True),
         metric("3", "sum", "ended", hide=True), failure_ratio("4", "1", "2", "3")],
        buckets,
        alias=alias,
    )


def qoe_overview() -> dict:
    lay = Layout()
    lay.row("All traffic in the selected range")
    total = "total"
    lay.add(stat("Attempts", [es_target(ES_WINDOWS, _q(total), [metric("1", "sum", "attempts")],
                                        [everything("2")])],
                 description="Sessions whose first event falls in the range (SPEC 7 attempts)."), 4, 4)
    lay.add(stat("Plays", [es_target(ES_WINDOWS, _q(total), [metric("1", "sum", "plays")], [everything("2")])],
                 description="Sessions that reached their first frame."), 4, 4)
    lay.add(stat("Rebuffer ratio", [_rebuffer_ratio_target(total, [everything("9")])], unit="percentunit",
                 description="Sum of rebuffer time over sum of watched time (CTA-2066 stalled time).",
                 thresholds=[(None, "green"), (0.02, "orange"), (0.05, "red")], decimals=2), 4, 4)
    lay.add(stat("Failure rate", [_failure_rate_target(total, [everything("9")])], unit="percentunit",
                 description="(VSF + VPF) / ended sessions.",
                 thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")], decimals=2), 4, 4)
    lay.add(stat("Startup time p50", [es_target(ES_SESSIONS, "_exists_:startup_ms",
                                                [metric("1", "percentiles", "startup_ms", percents=["50"])],
                                                [everything("2")])],
                 unit="ms", description="Median startup over the sessions that started in the range."), 4, 4)
    lay.add(stat("Startup time p95", [es_target(ES_SESSIONS, "_exists_:startup_ms",
                                                [metric("1", "percentiles", "startup_ms", percents=["95"])],
                                                [everything("2")])],
                 unit="ms", thresholds=[(None, "green"), (2000, "orange"), (5000, "red")]), 4, 4)

    lay.row("Over time")
    lay.add(timeseries("Attempts and plays", [
        es_target(ES_WINDOWS, _q(total), [metric("1", "sum", "attempts")], [date_hist("2", WIN)], ref="A",
                  alias="attempts"),
        es_target(ES_WINDOWS, _q(total), [metric("1", "sum", "plays")], [date_hist("2", WIN)], ref="B",
                  alias="plays"),
    ], bars=True), 12, 8)
    lay.add(timeseries("Startup time p50 / p95 (per window)", [
        es_target(ES_WINDOWS, _q(total), [metric("1", "avg", "startup_ms_p50")], [date_hist("2", WIN)],
                  ref="A", alias="p50"),
        es_target(ES_WINDOWS, _q(total), [metric("1", "avg", "startup_ms_p95")], [date_hist("2", WIN)],
                  ref="B", alias="p95"),
    ], unit="ms", description="Per-window sketch quantiles of the total group, averaged when a bucket "
                              "holds several windows."), 12, 8)
    lay.add(timeseries("Rebuffer ratio", [_rebuffer_ratio_target(total, [date_hist("9", WIN)], "rebuffer ratio")],
                       unit="percentunit"), 12, 8)
    lay.add(timeseries("Failure rate", [_failure_rate_target(total, [date_hist("9", WIN)], "failure rate")],
                       unit="percentunit"), 12, 8)

    for dim in QOE_DIMENSIONS:
        lay.row(f"By {dim}")
        by_dim = [terms("8", dim, size=10), date_hist("9", WIN)]
        lay.add(timeseries(f"Rebuffer ratio by {dim}", [_rebuffer_ratio_target(dim, by_dim, f"{{{{{dim}}}}}")],
                           unit="percentunit"), 8, 8)
        lay.add(timeseries(f"Failure rate by {dim}", [_failure_rate_target(dim, by_dim, f"{{{{{dim}}}}}")],
                           unit="percentunit"), 8, 8)
        lay.add(timeseries(f"Attempts by {dim}", [
            es_target(ES_WINDOWS, _q(dim), [metric("1", "sum", "attempts")], by_dim, alias=f"{{{{{dim}}}}}")
        ], bars=True, stack=True), 8, 8)

    lay.row("Startup and CDN x country")
    lay.add(timeseries("Startup time p95 by cdn (sessions)", [
        es_target(ES_SESSIONS, "_exists_:startup_ms", [metric("1", "percentiles", "startup_ms", percents=["95"])],
                  [terms("2", "cdn", size=10), date_hist("3", "start_ts")], alias="{{cdn}}")
    ], unit="ms"), 12, 8)
    lay.add(table("Worst CDN x country by rebuffer ratio", [
        es_target(ES_WINDOWS, _q("cdn+country"),
                  [metric("1", "sum", "rebuffer_ms", hide=True), metric("2", "sum", "watched_ms", hide=True),
                   ratio("3", "1", "2"), metric("4", "sum", "attempts")],
                  [terms("5", "cdn", size=10, order_by="4"), terms("6", "country", size=10, order_by="4")])
    ], units={"Bucket Script.*": "percentunit"}), 12, 8)
    return dashboard("playscope-qoe", "playscope / QoE overview",
                     "Quality of experience from the closed windows of SPEC 7 and the session summaries of SPEC 6.",
                     lay, [alert_annotation()])


def _error_rate_target(group: str, buckets: list[dict], alias: str = "") -> dict:
    return es_target(
        ES_WINDOWS,
        _q(group),
        [metric("1", "sum", "errors", hide=True), metric("2", "sum", "requests", hide=True), ratio("3", "1", "2")],
        buckets,
        alias=alias,
    )


def service_health() -> dict:
    lay = Layout()
    svc = "service"
    lay.row("All services in the selected range")
    lay.add(stat("Requests", [es_target(ES_WINDOWS, _q(svc), [metric("1", "sum", "requests")], [everything("2")])]),
            6, 4)
    lay.add(stat("Error rate", [_error_rate_target(svc, [everything("9")])], unit="percentunit",
                 description="Requests with status >= 500 (or ERROR/FATAL logs without a status) over requests.",
                 thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")], decimals=2), 6, 4)
    lay.add(stat("5xx responses", [es_target(ES_WINDOWS, _q(svc), [metric("1", "sum", "by_status.5xx")],
                                             [everything("2")])],
                 thresholds=[(None, "green"), (1, "orange")]), 6, 4)
    lay.add(stat("Worst window p99 latency", [es_target(ES_WINDOWS, _q(svc), [metric("1", "max", "latency_ms_p99")],
                                                        [everything("2")])], unit="ms"), 6, 4)

    lay.row("By service")
    by_svc = [terms("8", "service", size=20), date_hist("9", WIN)]
    lay.add(timeseries("Requests by service", [
        es_target(ES_WINDOWS, _q(svc), [metric("1", "sum", "requests")], by_svc, alias="{{service}}")
    ], bars=True, stack=True), 12, 8)
    lay.add(timeseries("Error rate by service", [_error_rate_target(svc, by_svc, "{{service}}")],
                       unit="percentunit"), 12, 8)
    for q in ("p50", "p95", "p99"):
        lay.add(timeseries(f"Latency {q} by service", [
            es_target(ES_WINDOWS, _q(svc), [metric("1", "avg", f"latency_ms_{q}")], by_svc, alias="{{service}}")
        ], unit="ms", description="Per-window sketch quantile, averaged when a bucket holds several windows."),
            8, 8)
    lay.add(timeseries("Responses by status class", [
        es_target(ES_WINDOWS, _q(svc), [metric("1", "sum", f"by_status.{cls}")], [date_hist("9", WIN)],
                  ref=ref, alias=cls)
        for ref, cls in zip("ABCD", ("2xx", "3xx", "4xx", "5xx"), strict=True)
    ], bars=True, stack=True), 24, 8)

    lay.row("By service and route")
    lay.add(table("Routes", [
        es_target(ES_WINDOWS, _q("service+route"),
                  [metric("1", "sum", "requests"), metric("2", "sum", "errors", hide=True), ratio("3", "2", "1"),
                   metric("4", "max", "latency_ms_p95"), metric("5", "max", "latency_ms_p99")],
                  [terms("6", "service", size=20, order_by="1"), terms("7", "route", size=50, order_by="1")])
    ], units={"Bucket Script.*": "percentunit", "Max.*": "ms"}), 24, 10)
    lay.add(timeseries("Error rate by route", [
        _error_rate_target("service+route", [terms("8", "route", size=10), date_hist("9", WIN)], "{{route}}")
    ], unit="percentunit"), 12, 8)
    lay.add(timeseries("Latency p95 by route", [
        es_target(ES_WINDOWS, _q("service+route"), [metric("1", "avg", "latency_ms_p95")],
                  [terms("8", "route", size=10), date_hist("9", WIN)], alias="{{route}}")
    ], unit="ms"), 12, 8)
    return dashboard("playscope-services", "playscope / service health",
                     "Requests, errors and latency from the service windows of SPEC 8.", lay, [alert_annotation()])


def _rate(metric_name: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric_name}[$__rate_interval]))"


def _p99(histogram: str) -> str:
    return f"histogram_quantile(0.99, sum by (le) (rate({histogram}_bucket[$__rate_interval])))"


def pipeline_health() -> dict:
    lay = Layout()
    lay.row("Components")
    lay.add(stat("Components up", [prom_target('sum(up{job=~"playscope.*"})', "up")],
                 thresholds=[(None, "red"), (1, "green")]), 6, 4)
    lay.add(stat("Collector reaches Kafka", [prom_target("min(playscope_collector_broker_up)", "broker up")],
                 thresholds=[(None, "red"), (1, "green")]), 6, 4)
    lay.add(stat("Alerts firing", [prom_target("sum(playscope_alerts_firing)", "firing")],
                 thresholds=[(None, "green"), (1, "red")]), 6, 4)
    lay.add(stat("Notifications pending", [prom_target("sum(playscope_alerts_pending_notifications)", "pending")],
                 thresholds=[(None, "green"), (1, "orange")]), 6, 4)

    lay.row("Throughput")
    lay.add(timeseries("Collector: received and acknowledged by Kafka", [
        prom_target(_rate("playscope_collector_received_events_total", "endpoint"), "received {{endpoint}}", "A"),
        prom_target(_rate("playscope_collector_sent_events_total", "endpoint"), "sent {{endpoint}}", "B"),
    ], unit="ops"), 12, 8)
    lay.add(timeseries("Log agent: read and confirmed", [
        prom_target("sum(rate(playscope_agent_received_events_total[$__rate_interval]))", "read", "A"),
        prom_target("sum(rate(playscope_agent_sent_events_total[$__rate_interval]))", "sent", "B"),
    ], unit="ops"), 12, 8)
    lay.add(timeseries("Streams: consumed", [
        prom_target(_rate("playscope_streams_received_events_total", "stream"), "{{stream}}", "A"),
    ], unit="ops"), 8, 8)
    lay.add(timeseries("Streams: sessions and windows emitted", [
        prom_target("sum(rate(playscope_streams_sessions_emitted_total[$__rate_interval]))", "sessions", "A"),
        prom_target(_rate("playscope_streams_windows_emitted_total", "stream"), "windows {{stream}}", "B"),
    ], unit="ops"), 8, 8)
    lay.add(timeseries("Indexer: stored documents", [
        prom_target(_rate("playscope_indexer_sent_events_total", "family"), "{{family}}", "A"),
    ], unit="ops"), 8, 8)
    lay.add(timeseries("Alert evaluator: windows evaluated and notifications", [
        prom_target(_rate("playscope_alerts_received_events_total", "source"), "windows {{source}}", "A"),
        prom_target(_rate("playscope_alerts_notifications_total", "channel_type, status"),
                    "{{channel_type}} {{status}}", "B"),
    ], unit="ops"), 24, 8)

    lay.row("Errors, rejects and dead letters")
    lay.add(timeseries("Errors by component and type", [
        prom_target(_rate("playscope_collector_errors_total", "error_type"), "collector {{error_type}}", "A"),
        prom_target(_rate("playscope_agent_errors_total", "error_type"), "agent {{error_type}}", "B"),
        prom_target(_rate("playscope_streams_errors_total", "error_type"), "streams {{error_type}}", "C"),
        prom_target(_rate("playscope_indexer_errors_total", "error_type"), "indexer {{error_type}}", "D"),
        prom_target(_rate("playscope_alerts_errors_total", "error_type"), "alerts {{error_type}}", "E"),
    ], unit="ops"), 12, 8)
    lay.add(timeseries("Rejected, discarded and dead-lettered", [
        prom_target(_rate("playscope_collector_rejected_events_total", "reason"), "collector {{reason}}", "A"),
        prom_target("sum(rate(playscope_agent_discarded_events_total[$__rate_interval]))", "agent", "B"),
        prom_target(_rate("playscope_streams_discarded_events_total", "reason"), "streams {{reason}}", "C"),
        prom_target(_rate("playscope_indexer_deadlettered_events_total", "family"), "indexer {{family}}", "D"),
        prom_target("sum(rate(playscope_streams_late_events_total[$__rate_interval]))", "late events", "E"),
    ], unit="ops"), 12, 8)

    lay.row("Lag and latency")
    lay.add(timeseries("Consumer lag", [
        prom_target("sum by (family) (playscope_indexer_consumer_lag)", "indexer {{family}}", "A"),
        prom_target("sum by (topic) (playscope_streams_consumer_lag)", "streams {{topic}}", "B"),
    ]), 12, 8)
    lay.add(timeseries("Latency p99", [
        prom_target(_p99("playscope_collector_produce_latency_seconds"), "collector produce", "A"),
        prom_target(_p99("playscope_streams_processing_latency_seconds"), "streams processing", "B"),
        prom_target(_p99("playscope_indexer_bulk_duration_seconds"), "indexer bulk", "C"),
    ], unit="s"), 12, 8)
    lay.add(timeseries("Backpressure and buffers", [
        prom_target("max(playscope_indexer_paused)", "indexer paused", "A"),
        prom_target("sum(playscope_indexer_pending_batches)", "indexer pending batches", "B"),
        prom_target("sum(playscope_collector_in_flight_requests)", "collector in-flight", "C"),
        prom_target("sum(playscope_agent_in_flight_batches)", "agent in-flight", "D"),
        prom_target("sum(rate(playscope_collector_spooled_events_total[$__rate_interval]))", "collector spooled/s",
                    "E"),
        prom_target("sum(playscope_streams_open_sessions)", "open sessions", "F"),
    ]), 24, 8)
    return dashboard("playscope-pipeline", "playscope / pipeline health",
                     "Self-monitoring of collector, agent, streams, indexer and alerts from their /metrics.",
                     lay, refresh="15s", time_from="now-30m")


def alerts_timeline() -> dict:
    lay = Layout()
    lay.row("Alert state changes")
    lay.add(stat("Firings in range", [es_target(ES_ALERTS, "status:firing", [metric("1", "count")],
                                                [everything("2")])],
                 thresholds=[(None, "green"), (1, "red")]), 8, 4)
    lay.add(stat("Resolves in range", [es_target(ES_ALERTS, "status:resolved", [metric("1", "count")],
                                                 [everything("2")])]), 8, 4)
    lay.add(stat("Critical firings", [es_target(ES_ALERTS, "status:firing AND severity:critical",
                                                [metric("1", "count")], [everything("2")])],
                 thresholds=[(None, "green"), (1, "red")]), 8, 4)
    lay.add(timeseries("Firing and resolved over time", [
        es_target(ES_ALERTS, "*", [metric("1", "count")], [terms("2", "status", size=5), date_hist("3", "ts")],
                  alias="{{status}}")
    ], bars=True, stack=True), 12, 8)
    lay.add(timeseries("Firings by rule", [
        es_target(ES_ALERTS, "status:firing", [metric("1", "count")],
                  [terms("2", "rule", size=20), date_hist("3", "ts")], alias="{{rule}}")
    ], bars=True, stack=True), 12, 8)
    lay.add(timeseries("Alert value vs threshold", [
        es_target(ES_ALERTS, "status:firing", [metric("1", "max", "value")],
                  [terms("2", "rule", size=20), date_hist("3", "ts")], ref="A", alias="{{rule}} value"),
        es_target(ES_ALERTS, "status:firing", [metric("1", "max", "threshold")],
                  [terms("2", "rule", size=20), date_hist("3", "ts")], ref="B", alias="{{rule}} threshold"),
    ]), 24, 8)
    lay.add(table("Latest alert changes", [
        es_target(ES_ALERTS, "*", [metric("1", "raw_data", size="200")], [])
    ]), 24, 12)
    return dashboard("playscope-alerts", "playscope / alerts timeline",
                     "Alert state changes from playscope-alerts-* (SPEC 9), newest first.", lay,
                     [alert_annotation()], time_from="now-6h")


# File name (under dashboards/grafana/) -> builder.
DASHBOARDS: dict[str, Callable[[], dict]] = {
    "qoe-overview.json": qoe_overview,
    "service-health.json": service_health,
    "pipeline-health.json": pipeline_health,
    "alerts-timeline.json": alerts_timeline,
}
