"""What ``playscope report`` reads: QoE windows, sessions, service windows and alerts over a range.

Every ratio is computed from summed numerators and denominators (SPEC 7-8 definitions), never
averaged from per-window ratios.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dashboards.esquery import auto_interval
from dashboards.search import SearchClient
from playscope.indices import FAMILIES

QOE_SUMS = ("attempts", "plays", "ended", "completed", "vsf", "vpf", "ebvs", "rebuffer_ms", "watched_ms",
            "play_ms", "rebuffer_count", "late_events")
DIMENSIONS = ("cdn", "isp", "device", "country")


def rebuffer_ratio(s: dict[str, float]) -> float:
    return s["rebuffer_ms"] / s["watched_ms"] if s.get("watched_ms") else 0.0


def failure_rate(s: dict[str, float]) -> float:
    return (s["vsf"] + s["vpf"]) / s["ended"] if s.get("ended") else 0.0


@dataclass
class Point:
    ts: int
    sums: dict[str, float]
    startup_p50: float | None = None
    startup_p95: float | None = None


@dataclass
class ReportData:
    start_ms: int
    end_ms: int
    totals: dict[str, float] = field(default_factory=dict)
    windows: int = 0
    timeline: list[Point] = field(default_factory=list)
    by_dimension: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    rebuffer_by_cdn: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    startup_p50_ms: float | None = None
    startup_p95_ms: float | None = None
    sessions: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    services: dict[str, dict[str, float]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.windows == 0 and self.sessions == 0 and not self.services


def _filter(group: str | None, time_field: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = [
        {"range": {time_field: {"gte": start_ms, "lt": end_ms, "format": "epoch_millis"}}}
    ]
    if group is not None:
        clauses.append({"term": {"group": group}})
    return {"bool": {"filter": clauses}}


def _sum_aggs(fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: {"sum": {"field": f}} for f in fields}


def _sums(bucket: dict[str, Any], fields: tuple[str, ...]) -> dict[str, float]:
    return {f: float((bucket.get(f) or {}).get("value") or 0) for f in fields}


def _agg(resp: dict[str, Any], name: str) -> dict[str, Any]:
    """An aggregation of the answer; empty when no index matched (no ``aggregations`` at all)."""
    return dict((resp.get("aggregations") or {}).get(name) or {"buckets": [], "values": {}})


class ReportReader:
    """Runs the report's searches against one cluster, with the deployment's index prefix."""

    def __init__(self, client: SearchClient, index_prefix: str = "") -> None:
        self.client = client
        self.prefix = index_prefix

    def _index(self, family: str) -> str:
        return f"{self.prefix}{FAMILIES[family].pattern}"

    def read(self, start_ms: int, end_ms: int) -> ReportData:
        data = ReportData(start_ms, end_ms)
        self._qoe_totals(data)
        self._qoe_timeline(data)
        for dim in DIMENSIONS:
            data.by_dimension[dim] = self._by_dimension(dim, start_ms, end_ms)
        self._rebuffer_by_cdn(data)
        self._sessions(data)
        self._services(data)
        self._alerts(data)
        return data

    def _qoe_totals(self, data: ReportData) -> None:
        resp = self.client.search(self._index("qoe"), {
            "size": 0, "track_total_hits": True,
            "query": _filter("total", "window_start", data.start_ms, data.end_ms), "aggs": _sum_aggs(QOE_SUMS)})
        data.windows = int(resp["hits"]["total"]["value"])
        data.totals = _sums(resp.get("aggregations") or {}, QOE_SUMS)

    def _qoe_timeline(self, data: ReportData) -> None:
        aggs = {**_sum_aggs(QOE_SUMS), "p50": {"avg": {"field": "startup_ms_p50"}},
                "p95": {"avg": {"field": "startup_ms_p95"}}}
        resp = self.client.search(self._index("qoe"), {
            "size": 0, "query": _filter("total", "window_start", data.start_ms, data.end_ms),
            "aggs": {"t": {"date_histogram": {"field": "window_start",
                                              "fixed_interval": auto_interval(data.start_ms, data.end_ms),
                                              "min_doc_count": 1}, "aggs": aggs}}})
        for b in _agg(resp, "t")["buckets"]:
            data.timeline.append(Point(int(b["key"]), _sums(b, QOE_SUMS), b["p50"]["value"], b["p95"]["value"]))

    def _by_dimension(self, dim: str, start_ms: int, end_ms: int) -> dict[str, dict[str, float]]:
        resp = self.client.search(self._index("qoe"), {
            "size": 0, "query": _filter(dim, "window_start", start_ms, end_ms),
            "aggs": {"d": {"terms": {"field": dim, "size": 20, "order": {"attempts": "desc"}},
                           "aggs": _sum_aggs(QOE_SUMS)}}})
        return {str(b["key"]): _sums(b, QOE_SUMS) for b in _agg(resp, "d")["buckets"]}

    def _rebuffer_by_cdn(self, data: ReportData) -> None:
        resp = self.client.search(self._index("qoe"), {
            "size": 0, "query": _filter("cdn", "window_start", data.start_ms, data.end_ms),
            "aggs": {"cdn": {"terms": {"field": "cdn", "size": 8, "order": {"w": "desc"}},
                             "aggs": {"w": {"sum": {"field": "watched_ms"}},
                                      "t": {"date_histogram": {"field": "window_start", "min_doc_count": 1,
                                                               "fixed_interval": auto_interval(data.start_ms,
                                                                                               data.end_ms)},
                                            "aggs": _sum_aggs(("rebuffer_ms", "watched_ms"))}}}}})
        for b in _agg(resp, "cdn")["buckets"]:
            data.rebuffer_by_cdn[str(b["key"])] = [
                (int(t["key"]), rebuffer_ratio(_sums(t, ("rebuffer_ms", "watched_ms")))) for t in b["t"]["buckets"]]

    def _sessions(self, data: ReportData) -> None:
        resp = self.client.search(self._index("sessions"), {
            "size": 0, "track_total_hits": True,
            "query": _filter(None, "start_ts", data.start_ms, data.end_ms),
            "aggs": {"startup": {"percentiles": {"field": "startup_ms", "percents": [50.0, 95.0]}},
                     "outcome": {"terms": {"field": "outcome", "size": 10}}}})
        data.sessions = int(resp["hits"]["total"]["value"])
        values = _agg(resp, "startup")["values"]
        data.startup_p50_ms, data.startup_p95_ms = values.get("50.0"), values.get("95.0")
        data.outcomes = {str(b["key"]): int(b["doc_count"]) for b in _agg(resp, "outcome")["buckets"]}

    def _services(self, data: ReportData) -> None:
        resp = self.client.search(self._index("service"), {
            "size": 0, "query": _filter("service", "window_start", data.start_ms, data.end_ms),
            "aggs": {"s": {"terms": {"field": "service", "size": 30, "order": {"requests": "desc"}},
                           "aggs": {**_sum_aggs(("requests", "errors")),
                                    "p95_worst": {"max": {"field": "latency_ms_p95"}},
                                    "p99_worst": {"max": {"field": "latency_ms_p99"}},
                                    "p95_mean": {"avg": {"field": "latency_ms_p95"}}}}}})
        for b in _agg(resp, "s")["buckets"]:
            requests, errors = float(b["requests"]["value"] or 0), float(b["errors"]["value"] or 0)
            data.services[str(b["key"])] = {
                "requests": requests, "errors": errors, "error_rate": errors / requests if requests else 0.0,
                "p95_mean": float(b["p95_mean"]["value"] or 0), "p95_worst": float(b["p95_worst"]["value"] or 0),
                "p99_worst": float(b["p99_worst"]["value"] or 0)}

    def _alerts(self, data: ReportData) -> None:
        resp = self.client.search(self._index("alerts"), {
            "size": 500, "query": _filter(None, "ts", data.start_ms, data.end_ms),
            "sort": [{"ts": {"order": "asc"}}],
            "_source": ["ts", "status", "rule", "severity", "group_key", "value", "threshold", "summary"]})
        data.alerts = [h["_source"] for h in resp["hits"]["hits"]]
