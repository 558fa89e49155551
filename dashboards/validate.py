"""Structural checks of the dashboard files, run by the tests and before every provision.

Each check returns a list of problems (empty when all is well), each naming the file and the
panel, so a broken dashboard is refused before it reaches Grafana or Kibana.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dashboards.kibana_model import INDEX_REF

_PLACEHOLDER = re.compile(r"\$\{DS_[A-Za-z0-9_]*\}")
_PANEL_KINDS_WITH_TARGETS = {"timeseries", "stat", "table", "barchart", "bargauge", "gauge", "piechart",
                             "state-timeline"}
_ES_METRICS = {"count", "avg", "sum", "min", "max", "percentiles", "cardinality", "bucket_script", "raw_data"}
_ES_BUCKETS = {"terms", "date_histogram", "filters", "histogram"}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out += panel.get("panels", [])  # collapsed rows keep their panels inside
    return out


def grafana_problems(name: str, dashboard: dict[str, Any], datasources: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    known = {ds["uid"]: ds["type"] for ds in datasources}
    if _PLACEHOLDER.search(json.dumps(dashboard)):
        problems.append(f"{name}: contains a ${{DS_...}} placeholder (exported for sharing)")
    if "id" not in dashboard or dashboard["id"] is not None:
        problems.append(f"{name}: 'id' must be null so provisioning does not clash with stored ids")
    for key in ("uid", "title", "schemaVersion", "panels"):
        if not dashboard.get(key):
            problems.append(f"{name}: missing {key!r}")
    if dashboard.get("uid") and len(dashboard["uid"]) > 40:
        problems.append(f"{name}: uid longer than 40 characters")
    ids = [p.get("id") for p in _panels(dashboard)]
    dupes = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if dupes:
        problems.append(f"{name}: duplicate panel ids {dupes}")
    if any(i is None for i in ids):
        problems.append(f"{name}: a panel has no id")
    for panel in _panels(dashboard):
        where = f"{name}: panel {panel.get('id')} {panel.get('title')!r}"
        problems += _grid_problems(where, panel)
        if panel.get("type") == "row":
            continue
        if panel.get("type") not in _PANEL_KINDS_WITH_TARGETS:
            problems.append(f"{where}: unknown panel type {panel.get('type')!r}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            problems.append(f"{where}: duplicate refId")
        for target in targets:
            problems += _target_problems(f"{where} target {target.get('refId')}", target, known)
    for ann in dashboard.get("annotations", {}).get("list", []):
        uid = ann.get("datasource", {}).get("uid")
        if uid not in known:
            problems.append(f"{name}: annotation {ann.get('name')!r} uses unknown data source {uid!r}")
    return problems


def _grid_problems(where: str, panel: dict[str, Any]) -> list[str]:
    grid = panel.get("gridPos") or {}
    if not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")):
        return [f"{where}: gridPos needs integer x, y, w, h"]
    if grid["x"] < 0 or grid["w"] < 1 or grid["x"] + grid["w"] > 24:
        return [f"{where}: gridPos outside the 24-column grid"]
    return []


def _target_problems(where: str, target: dict[str, Any], known: dict[str, str]) -> list[str]:
    ds = target.get("datasource") or {}
    uid = ds.get("uid")
    if uid not in known:
        return [f"{where}: data source uid {uid!r} is not provisioned"]
    if ds.get("type") != known[uid]:
        return [f"{where}: data source {uid!r} has type {known[uid]!r}, target says {ds.get('type')!r}"]
    if known[uid] == "prometheus":
        return [] if target.get("expr") else [f"{where}: Prometheus target without expr"]
    problems = []
    metrics = target.get("metrics") or []
    if not metrics:
        problems.append(f"{where}: no metrics")
    if not target.get("timeField"):
        problems.append(f"{where}: no timeField")
    metric_ids = {m.get("id") for m in metrics}
    for m in metrics:
        if m.get("type") not in _ES_METRICS:
            problems.append(f"{where}: unknown metric type {m.get('type')!r}")
        if m.get("type") in ("avg", "sum", "min", "max", "percentiles", "cardinality") and not m.get("field"):
            problems.append(f"{where}: metric {m.get('id')} has no field")
        for var in m.get("pipelineVariables", []):
            if var.get("pipelineAgg") not in metric_ids:
                problems.append(f"{where}: bucket_script refers to missing metric {var.get('pipelineAgg')!r}")
    is_raw = any(m.get("type") == "raw_data" for m in metrics)
    buckets = target.get("bucketAggs") or []
    if not buckets and not is_raw:
        problems.append(f"{where}: no bucket aggregation")
    for b in buckets:
        if b.get("type") not in _ES_BUCKETS:
            problems.append(f"{where}: unknown bucket aggregation {b.get('type')!r}")
        if b.get("id") in metric_ids:
            problems.append(f"{where}: bucket id {b.get('id')!r} collides with a metric id")
    return problems


def kibana_problems(objects: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    by_key = {(o.get("type"), o.get("id")): o for o in objects}
    if len(by_key) != len(objects):
        problems.append("kibana: duplicate (type, id) pairs")
    for obj in objects:
        where = f"kibana: {obj.get('type')} {obj.get('id')!r}"
        attrs = obj.get("attributes") or {}
        if not attrs.get("title"):
            problems.append(f"{where}: no title")
        for ref in obj.get("references", []):
            if (ref.get("type"), ref.get("id")) not in by_key:
                missing = f"{ref.get('type')} {ref.get('id')!r}"
                problems.append(f"{where}: reference {ref.get('name')!r} to missing {missing}")
        if obj.get("type") == "index-pattern" and not attrs.get("timeFieldName"):
            problems.append(f"{where}: data view without a time field")
        if obj.get("type") == "visualization":
            names = {r.get("name") for r in obj.get("references", []) if r.get("type") == "index-pattern"}
            if INDEX_REF not in names:
                problems.append(f"{where}: not bound to a data view")
            try:
                state = json.loads(attrs["visState"])
                json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"{where}: visState or searchSourceJSON unreadable: {exc}")
                continue
            if not any(a.get("schema") == "metric" for a in state.get("aggs", [])):
                problems.append(f"{where}: no metric aggregation")
        if obj.get("type") == "dashboard":
            try:
                panels = json.loads(attrs["panelsJSON"])
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"{where}: panelsJSON unreadable: {exc}")
                continue
            ref_names = {r.get("name") for r in obj.get("references", [])}
            for panel in panels:
                if panel.get("panelRefName") not in ref_names:
                    problems.append(f"{where}: panel {panel.get('panelIndex')} has no matching reference")
    return problems


def all_problems() -> list[str]:
    """Every problem in the committed Grafana and Kibana files."""
    from dashboards.assets import grafana_dashboards, grafana_datasources, kibana_objects

    datasources = grafana_datasources()
    problems = [p for name, board in grafana_dashboards().items()
                for p in grafana_problems(name, board, datasources)]
    return problems + kibana_problems(kibana_objects())
