"""Kibana saved objects: one data view per index family, aggregation-based visualizations and
three dashboards, written as the ndjson that Kibana's saved-objects import API accepts.

Visualizations use the classic aggregation editor (``visState``), whose aggregations map one
to one onto an Elasticsearch search, so the tests can run each of them against the real
cluster. Queries use the Lucene syntax for the same reason. Kibana's classic editor has no
bucket script, so its ratio charts show the mean of the per-window ratios; the Grafana
dashboards show the exact ratio of sums.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from playscope.indices import FAMILIES

CORE_MIGRATION_VERSION = "8.8.0"
TYPE_MIGRATION_VERSION = {"index-pattern": "8.0.0", "visualization": "8.5.0", "dashboard": "8.7.0"}
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"

DATA_VIEW_NAMES = {
    "playback": "playscope playback events",
    "logs": "playscope service logs",
    "sessions": "playscope sessions",
    "qoe": "playscope QoE windows",
    "service": "playscope service windows",
    "alerts": "playscope alerts",
    "deadletter": "playscope dead letters",
}


def data_view_id(family: str) -> str:
    return f"playscope-{family}"


def data_view(family: str, index_prefix: str = "") -> dict[str, Any]:
    fam = FAMILIES[family]
    return _saved("index-pattern", data_view_id(family), {
        "title": f"{index_prefix}{fam.pattern}",
        "name": DATA_VIEW_NAMES[family],
        "timeFieldName": fam.time_field,
    }, [])


def _saved(kind: str, oid: str, attributes: dict[str, Any], references: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "type": kind,
        "id": oid,
        "attributes": attributes,
        "references": references,
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": TYPE_MIGRATION_VERSION[kind],
    }


# ---- aggregations (classic editor shapes) -----------------------------------------------


def m(aid: str, kind: str, field: str | None = None, **params: Any) -> dict[str, Any]:
    p = dict(params)
    if field:
        p["field"] = field
    return {"id": aid, "enabled": True, "type": kind, "params": p, "schema": "metric"}


def over_time(aid: str, field: str) -> dict[str, Any]:
    return {"id": aid, "enabled": True, "type": "date_histogram", "schema": "segment",
            "params": {"field": field, "useNormalizedEsInterval": True, "interval": "auto",
                       "drop_partials": False, "min_doc_count": 1, "extended_bounds": {}}}


def split(aid: str, field: str, schema: str = "group", size: int = 10, order_by: str = "1") -> dict[str, Any]:
    return {"id": aid, "enabled": True, "type": "terms", "schema": schema,
            "params": {"field": field, "orderBy": order_by, "order": "desc", "size": size,
                       "otherBucket": False, "missingBucket": False}}


def _xy_params(chart: str, y_title: str) -> dict[str, Any]:
    return {
        "type": chart,
        "grid": {"categoryLines": False},
        "categoryAxes": [{"id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": True,
                          "scale": {"type": "linear"}, "labels": {"show": True, "filter": True, "truncate": 100},
                          "title": {}}],
        "valueAxes": [{"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left",
                       "show": True, "scale": {"type": "linear", "mode": "normal"},
                       "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                       "title": {"text": y_title}}],
        "seriesParams": [{"show": True, "type": chart, "mode": "stacked" if chart == "histogram" else "normal",
                          "data": {"label": y_title, "id": "1"}, "valueAxis": "ValueAxis-1",
                          "drawLinesBetweenPoints": True, "lineWidth": 2, "showCircles": True,
                          "interpolate": "linear"}],
        "addTooltip": True,
        "addLegend": True,
        "legendPosition": "right",
        "times": [],
        "addTimeMarker": False,
        "detailedTooltip": True,
        "palette": {"type": "palette", "name": "default"},
        "isVislibVis": False,
        "fittingFunction": "linear",
        "thresholdLine": {"show": False, "value": 10, "width": 1, "style": "full", "color": "#E7664C"},
        "labels": {},
    }


VIS_PARAMS = {
    "line": lambda y: _xy_params("line", y),
    "histogram": lambda y: _xy_params("histogram", y),
    "table": lambda _y: {"perPage": 10, "showPartialRows": False, "showMetricsAtAllLevels": False,
                         "showTotal": False, "totalFunc": "sum", "percentageCol": ""},
    "pie": lambda _y: {"type": "pie", "addTooltip": True, "legendDisplay": "show", "legendPosition": "right",
                       "isDonut": True, "nestedLegend": False, "distinctColors": False, "truncateLegend": True,
                       "maxLegendLines": 1, "palette": {"type": "palette", "name": "default"},
                       "labels": {"show": True, "values": True, "last_level": True, "truncate": 100,
                                  "position": "default", "valuesFormat": "percent"}},
}


@dataclass(frozen=True)
class Vis:
    vid: str
    title: str
    family: str
    chart: str  # a key of VIS_PARAMS
    query: str  # Lucene
    aggs: tuple[dict[str, Any], ...]
    y_title: str = ""

    def saved_object(self) -> dict[str, Any]:
        vis_state = {"title": self.title, "type": self.chart, "params": VIS_PARAMS[self.chart](self.y_title),
                     "aggs": list(self.aggs)}
        search_source = {"query": {"query": self.query, "language": "lucene"}, "filter": [],
                         "indexRefName": INDEX_REF}
        return _saved("visualization", self.vid, {
            "title": self.title,
            "description": "",
            "version": 1,
            "uiStateJSON": "{}",
            "visState": json.dumps(vis_state, sort_keys=True),
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(search_source, sort_keys=True)},
        }, [{"name": INDEX_REF, "type": "index-pattern", "id": data_view_id(self.family)}])


def dashboard_object(did: str, title: str, description: str, visualizations: list[Vis],
                     time_from: str = "now-1h") -> dict[str, Any]:
    panels, refs = [], []
    for i, vis in enumerate(visualizations):
        ref = f"panel_{i}"
        panels.append({
            "version": CORE_MIGRATION_VERSION,
            "type": "visualization",
            "gridData": {"x": (i % 2) * 24, "y": (i // 2) * 15, "w": 24, "h": 15, "i": str(i + 1)},
            "panelIndex": str(i + 1),
            "embeddableConfig": {"enhancements": {}},
            "panelRefName": ref,
        })
        refs.append({"name": ref, "type": "visualization", "id": vis.vid})
    search_source = {"query": {"query": "", "language": "lucene"}, "filter": []}
    return _saved("dashboard", did, {
        "title": title,
        "description": description,
        "version": 1,
        "timeRestore": True,
        "timeFrom": time_from,
        "timeTo": "now",
        "refreshInterval": {"pause": False, "value": 30000},
        "optionsJSON": json.dumps({"useMargins": True, "syncColors": False, "hidePanelTitles": False}),
        "panelsJSON": json.dumps(panels),
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(search_source)},
    }, refs)
