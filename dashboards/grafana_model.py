"""Small builders for Grafana dashboard JSON models (schema 39, Grafana 10/11).

The committed dashboards under ``dashboards/grafana/`` are generated from these builders
(``python -m dashboards.build``) so that panel ids, grid positions and the repeated
"ratio of two sums" queries stay consistent. The output is the raw model Grafana stores:
``"id": null`` and data sources referenced by uid, which file provisioning accepts as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Data source uids; the provisioning file under grafana/provisioning/datasources defines them.
ES_WINDOWS = "playscope-es"  # playscope-qoe-* and playscope-service-*, time field window_start
ES_SESSIONS = "playscope-es-sessions"  # playscope-sessions-*, time field start_ts
ES_ALERTS = "playscope-es-alerts"  # playscope-alerts-*, time field ts
PROMETHEUS = "playscope-prometheus"

ES_TIME_FIELDS = {ES_WINDOWS: "window_start", ES_SESSIONS: "start_ts", ES_ALERTS: "ts"}

GRID_WIDTH = 24


def es_ds(uid: str) -> dict[str, str]:
    return {"type": "elasticsearch", "uid": uid}


def prom_ds() -> dict[str, str]:
    return {"type": "prometheus", "uid": PROMETHEUS}


# ---- Elasticsearch query pieces (the shapes Grafana's query editor saves) -----------------


def metric(mid: str, kind: str, field_name: str | None = None, hide: bool = False, **settings: Any) -> dict:
    out: dict[str, Any] = {"id": mid, "type": kind}
    if field_name:
        out["field"] = field_name
    if hide:
        out["hide"] = True
    if settings:
        out["settings"] = settings
    return out


def ratio(mid: str, num_id: str, den_id: str) -> dict:
    """``num / den`` per bucket (0 when den is 0): the right way to aggregate a ratio of sums."""
    return {
        "id": mid,
        "type": "bucket_script",
        "pipelineVariables": [{"name": "num", "pipelineAgg": num_id}, {"name": "den", "pipelineAgg": den_id}],
        "settings": {"script": "params.den > 0 ? params.num / params.den : 0"},
    }


def failure_ratio(mid: str, vsf_id: str, vpf_id: str, ended_id: str) -> dict:
    """SPEC 7 ``failure_rate = (vsf + vpf) / ended`` over summed counts."""
    return {
        "id": mid,
        "type": "bucket_script",
        "pipelineVariables": [
            {"name": "vsf", "pipelineAgg": vsf_id},
            {"name": "vpf", "pipelineAgg": vpf_id},
            {"name": "ended", "pipelineAgg": ended_id},
        ],
        "settings": {"script": "params.ended > 0 ? (params.vsf + params.vpf) / params.ended : 0"},
    }


def date_hist(bid: str, time_field: str) -> dict:
    return {
        "id": bid,
        "type": "date_histogram",
        "field": time_field,
        "settings": {"interval": "auto", "min_doc_count": "0", "trimEdges": "0"},
    }


def terms(bid: str, field_name: str, size: int = 10, order_by: str = "_count") -> dict:
    return {
        "id": bid,
        "type": "terms",
        "field": field_name,
        "settings": {"size": str(size), "order": "desc", "orderBy": order_by, "min_doc_count": "1"},
    }


def everything(bid: str) -> dict:
    """A single bucket over the whole range (for stat panels)."""
    return {"id": bid, "type": "filters", "settings": {"filters": [{"query": "*", "label": "all"}]}}


def es_target(
    uid: str,
    query: str,
    metrics: list[dict],
    bucket_aggs: list[dict],
    ref: str = "A",
    alias: str = "",
) -> dict:
    target: dict[str, Any] = {
        "refId": ref,
        "datasource": es_ds(uid),
        "query": query,
        "metrics": metrics,
        "bucketAggs": bucket_aggs,
        "timeField": ES_TIME_FIELDS[uid],
    }
    if alias:
        target["alias"] = alias
    return target


def prom_target(expr: str, legend: str = "__auto", ref: str = "A") -> dict:
    return {"refId": ref, "datasource": prom_ds(), "expr": expr, "legendFormat": legend, "range": True}


# ---- panels and layout -------------------------------------------------------------------


@dataclass
class Layout:
    """Places panels left to right, wrapping at the grid width; hands out unique ids."""

    panels: list[dict] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_h: int = 0
    _next_id: int = 1

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "id": self._id(),
                "type": "row",
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self._y},
            }
        )
        self._y += 1

    def add(self, panel: dict, w: int, h: int) -> None:
        if self._x + w > GRID_WIDTH:
            self._newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_h
        self._x, self._row_h = 0, 0


def _datasource_of(targets: list[dict]) -> dict:
    return dict(targets[0]["datasource"])


def timeseries(title: str, targets: list[dict], unit: str = "short", description: str = "",
               bars: bool = False, stack: bool = False) -> dict:
    custom: dict[str, Any] = {"drawStyle": "bars" if bars else "line", "lineWidth": 1,
                              "fillOpacity": 60 if bars else 10, "spanNulls": True, "showPoints": "never"}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": _datasource_of(targets),
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": ["mean", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(title: str, targets: list[dict], unit: str = "short", description: str = "",
         thresholds: list[tuple[float | None, str]] | None = None, decimals: int | None = None) -> dict:
    steps = [{"color": color, "value": value} for value, color in (thresholds or [(None, "blue")])]
    defaults: dict[str, Any] = {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": _datasource_of(targets),
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value",
            "justifyMode": "center",
            "orientation": "auto",
        },
    }


def table(title: str, targets: list[dict], description: str = "",
          units: dict[str, str] | None = None) -> dict:
    overrides = [
        {"matcher": {"id": "byRegexp", "options": pattern}, "properties": [{"id": "unit", "value": unit}]}
        for pattern, unit in (units or {}).items()
    ]
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": _datasource_of(targets),
        "targets": targets,
        "fieldConfig": {"defaults": {"custom": {"align": "auto", "filterable": True}}, "overrides": overrides},
        "options": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"]}},
        "transformations": [],
    }


def dashboard(uid: str, title: str, description: str, layout: Layout, annotations: list[dict] | None = None,
              refresh: str = "30s", time_from: str = "now-1h") -> dict:
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["playscope"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": refresh,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "templating": {"list": []},
        "annotations": {"list": annotations or []},
        "links": [
            {"title": "playscope", "type": "dashboards", "tags": ["playscope"], "asDropdown": True,
             "includeVars": False, "keepTime": True, "icon": "external link", "targetBlank": False,
             "tooltip": "", "url": ""}
        ],
        "panels": layout.panels,
    }


def alert_annotation() -> dict:
    """Marks alert firings from playscope-alerts-* on time series panels."""
    return {
        "name": "playscope alerts",
        "datasource": es_ds(ES_ALERTS),
        "enable": True,
        "iconColor": "red",
        "query": "status:firing",
        "target": {"query": "status:firing", "refId": "Anno", "limit": 100},
        "timeField": "ts",
        "textField": "summary",
        "tagsField": "rule",
    }
