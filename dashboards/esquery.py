"""Translate a dashboard panel's query into the Elasticsearch ``_search`` it stands for.

Grafana's Elasticsearch data source and Kibana's aggregation editor both turn a saved query
into one search: a ``query_string`` filter plus a time range, bucket aggregations nested in the
order they are listed, metric aggregations in the innermost bucket. Doing the same here lets
``playscope dashboards check`` and the tests run every panel against a real cluster, and tells
which field each panel needs with which type.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Field kinds a use needs; see FIELD_TYPES_FOR.
NUMERIC, KEYWORD, DATE, ANY = "numeric", "keyword", "date", "any"

FIELD_TYPES_FOR: dict[str, set[str]] = {
    NUMERIC: {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"},
    KEYWORD: {"keyword", "constant_keyword", "boolean"},
    DATE: {"date", "date_nanos"},
    ANY: set(),  # any mapped field
}

_METRIC_FIELD_KIND = {"avg": NUMERIC, "sum": NUMERIC, "min": NUMERIC, "max": NUMERIC,
                      "percentiles": NUMERIC, "cardinality": ANY}

# Intervals Grafana and Kibana pick from for "auto"; at least the data source's 10 s minimum.
_AUTO_STEPS_S = (10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 12 * 3600, 86400)
_TARGET_BUCKETS = 200


@dataclass(frozen=True)
class FieldUse:
    field: str
    kind: str  # NUMERIC, KEYWORD, DATE or ANY
    why: str


def auto_interval(start_ms: int, end_ms: int) -> str:
    span_s = max(1, (end_ms - start_ms) // 1000)
    for step in _AUTO_STEPS_S:
        if span_s / step <= _TARGET_BUCKETS:
            return f"{step}s"
    return f"{_AUTO_STEPS_S[-1]}s"


_QUERY_FIELD = re.compile(r"(?<![\w.\\])([A-Za-z_][\w.]*)\s*:")


def query_fields(query: str) -> list[str]:
    """Fields a Lucene query names (``group:cdn`` -> group, ``_exists_:x`` -> x)."""
    out: list[str] = []
    without_quotes = re.sub(r'"[^"]*"', '""', query)
    for name in _QUERY_FIELD.findall(without_quotes):
        if name != "_exists_":
            out.append(name)
    out += re.findall(r"_exists_\s*:\s*([\w.]+)", query)
    return out


def _base_query(query: str, time_field: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    return {
        "bool": {
            "filter": [
                {"range": {time_field: {"gte": start_ms, "lte": end_ms, "format": "epoch_millis"}}},
                {"query_string": {"analyze_wildcard": True, "query": query or "*"}},
            ]
        }
    }


# ---- Grafana ----------------------------------------------------------------------------


def _grafana_metric_agg(m: dict[str, Any]) -> dict[str, Any] | None:
    kind = m["type"]
    if kind == "count":
        return None
    if kind == "bucket_script":
        paths = {v["name"]: v["pipelineAgg"] for v in m["pipelineVariables"]}
        return {"bucket_script": {"buckets_path": paths, "script": m["settings"]["script"]}}
    if kind == "percentiles":
        percents = [float(p) for p in m.get("settings", {}).get("percents", ["25", "50", "75", "95", "99"])]
        return {"percentiles": {"field": m["field"], "percents": percents}}
    if kind in _METRIC_FIELD_KIND:
        return {kind: {"field": m["field"]}}
    raise ValueError(f"metric type {kind!r} is not supported by this translation")


def _grafana_bucket_agg(b: dict[str, Any], metrics: list[dict[str, Any]], start_ms: int, end_ms: int
                        ) -> dict[str, Any]:
    kind, settings = b["type"], b.get("settings", {})
    if kind == "date_histogram":
        interval = settings.get("interval", "auto")
        return {"date_histogram": {
            "field": b["field"],
            "fixed_interval": auto_interval(start_ms, end_ms) if interval == "auto" else interval,
            "min_doc_count": int(settings.get("min_doc_count", 0)),
            "extended_bounds": {"min": start_ms, "max": end_ms},
            "format": "epoch_millis",
        }}
    if kind == "terms":
        order_by = settings.get("orderBy", "_term")
        key = {"_term": "_key", "_count": "_count"}.get(order_by, order_by)
        if key not in ("_key", "_count"):
            ordered = next((m for m in metrics if m["id"] == key), None)
            if ordered is None or ordered["type"] == "count":
                key = "_count"
            elif ordered["type"] == "percentiles":
                key = f"{key}.{float(ordered['settings']['percents'][0])}"
        return {"terms": {"field": b["field"], "size": int(settings.get("size", 10)),
                          "order": {key: settings.get("order", "desc")},
                          "min_doc_count": int(settings.get("min_doc_count", 1))}}
    if kind == "filters":
        filters = {f.get("label") or f["query"]: {"query_string": {"query": f["query"] or "*",
                                                                   "analyze_wildcard": True}}
                   for f in settings["filters"]}
        return {"filters": {"filters": filters}}
    raise ValueError(f"bucket aggregation {kind!r} is not supported by this translation")


def grafana_search(target: dict[str, Any], start_ms: int, end_ms: int, scripts: bool = True) -> dict[str, Any]:
    """The ``_search`` body Grafana sends for an Elasticsearch ``target`` over [start, end].

    With ``scripts=False`` the ``bucket_script`` aggregations are left out, for a cluster
    without a script language; :func:`apply_bucket_scripts` then computes them from the answer.
    """
    body: dict[str, Any] = {
        "size": 0,
        "query": _base_query(target.get("query", ""), target["timeField"], start_ms, end_ms),
    }
    metrics = target["metrics"]
    raw = next((m for m in metrics if m["type"] in ("raw_data", "raw_document", "logs")), None)
    if raw is not None:
        body["size"] = int(raw.get("settings", {}).get("size", 500))
        body["sort"] = [{target["timeField"]: {"order": "desc", "unmapped_type": "boolean"}}]
        return body
    leaf: dict[str, Any] = {}
    for m in metrics:
        if m["type"] == "bucket_script" and not scripts:
            continue
        agg = _grafana_metric_agg(m)
        if agg is not None:
            leaf[m["id"]] = agg
    aggs = leaf
    for b in reversed(target["bucketAggs"]):
        node = _grafana_bucket_agg(b, metrics, start_ms, end_ms)
        children = dict(aggs)
        order_by = b.get("settings", {}).get("orderBy", "")
        ordered = next((m for m in metrics if m["id"] == order_by and m["type"] != "count"), None)
        if b["type"] == "terms" and ordered is not None:
            # As Grafana does: the metric a terms aggregation sorts on is computed at its level.
            children[order_by] = _grafana_metric_agg(ordered)
        if children:
            node["aggs"] = children
        aggs = {b["id"]: node}
    body["aggs"] = aggs
    return body


def grafana_fields(target: dict[str, Any]) -> list[FieldUse]:
    uses = [FieldUse(target["timeField"], DATE, "time field")]
    uses += [FieldUse(f, ANY, "query") for f in query_fields(target.get("query", ""))]
    for m in target["metrics"]:
        if m["type"] in _METRIC_FIELD_KIND:
            uses.append(FieldUse(m["field"], _METRIC_FIELD_KIND[m["type"]], m["type"]))
    for b in target["bucketAggs"]:
        if b["type"] == "terms":
            uses.append(FieldUse(b["field"], KEYWORD, "terms"))
        elif b["type"] == "date_histogram":
            uses.append(FieldUse(b["field"], DATE, "date_histogram"))
        elif b["type"] == "filters":
            for f in b["settings"]["filters"]:
                uses += [FieldUse(name, ANY, "filters") for name in query_fields(f["query"])]
    return uses


_SCRIPT_TOKENS = re.compile(r"^(?:params\.\w+|\d+(?:\.\d+)?|[-+*/()<>=!?:&|\s])+$")
_TERNARY = re.compile(r"^(.+?)\?(.+?):(.+)$")


def _python_expr(script: str) -> str:
    """A Painless arithmetic expression (with at most one ``c ? a : b``) as Python."""
    if not _SCRIPT_TOKENS.match(script):
        raise ValueError(f"bucket script outside the arithmetic subset: {script!r}")
    expr = script.replace("params.", "").replace("&&", " and ").replace("||", " or ")
    match = _TERNARY.match(expr)
    if match:
        cond, yes, no = (part.strip() for part in match.groups())
        expr = f"(({yes}) if ({cond}) else ({no}))"
    return expr


def apply_bucket_scripts(response: dict[str, Any], target: dict[str, Any]) -> None:
    """Fill in each innermost bucket the value of the target's ``bucket_script`` metrics, the
    way Elasticsearch would, for a cluster that cannot run scripts (in place)."""
    scripts = [m for m in target["metrics"] if m["type"] == "bucket_script"]
    if not scripts:
        return
    compiled = [(m["id"], {v["name"]: v["pipelineAgg"] for v in m["pipelineVariables"]},
                 compile(_python_expr(m["settings"]["script"]), "<bucket_script>", "eval")) for m in scripts]

    def visit(bucket: dict[str, Any]) -> None:
        children = [v for v in bucket.values() if isinstance(v, dict) and "buckets" in v]
        for child in children:
            inner = child["buckets"]
            for sub in inner.values() if isinstance(inner, dict) else inner:
                visit(sub)
        if children:
            return
        for mid, variables, code in compiled:
            env = {name: (bucket.get(agg_id) or {}).get("value") for name, agg_id in variables.items()}
            if any(v is None for v in env.values()):
                continue
            bucket[mid] = {"value": float(eval(code, {"__builtins__": {}}, env))}

    visit(response.get("aggregations", {}))


# ---- Kibana -----------------------------------------------------------------------------


def kibana_vis_parts(saved: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(visState, Lucene query) of a visualization saved object."""
    attrs = saved["attributes"]
    vis_state = json.loads(attrs["visState"])
    source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
    return vis_state, source.get("query", {}).get("query", "")


def _kibana_metric_agg(a: dict[str, Any]) -> dict[str, Any] | None:
    kind, params = a["type"], a["params"]
    if kind == "count":
        return None
    if kind == "percentiles":
        return {"percentiles": {"field": params["field"], "percents": [float(p) for p in params["percents"]]}}
    if kind in _METRIC_FIELD_KIND:
        return {kind: {"field": params["field"]}}
    raise ValueError(f"metric type {kind!r} is not supported by this translation")


def kibana_search(saved: dict[str, Any], time_field: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    vis_state, query = kibana_vis_parts(saved)
    aggs_in = [a for a in vis_state["aggs"] if a.get("enabled", True)]
    metrics = [a for a in aggs_in if a["schema"] == "metric"]
    buckets = [a for a in aggs_in if a["schema"] != "metric"]
    leaf = {a["id"]: agg for a in metrics if (agg := _kibana_metric_agg(a)) is not None}
    aggs: dict[str, Any] = leaf
    for b in reversed(buckets):
        params = b["params"]
        if b["type"] == "date_histogram":
            interval = params.get("interval", "auto")
            node: dict[str, Any] = {"date_histogram": {
                "field": params["field"],
                "fixed_interval": auto_interval(start_ms, end_ms) if interval == "auto" else interval,
                "min_doc_count": int(params.get("min_doc_count", 1)),
                "format": "epoch_millis",
            }}
        elif b["type"] == "terms":
            order_id = params.get("orderBy", "_key")
            ordered = next((a for a in metrics if a["id"] == order_id), None)
            key = "_count" if ordered is None or ordered["type"] == "count" else order_id
            node = {"terms": {"field": params["field"], "size": int(params.get("size", 10)),
                              "order": {key: params.get("order", "desc")}}}
            if ordered is not None and key != "_count":
                # As Kibana does: the metric a terms aggregation sorts on is computed at its level.
                aggs = {**aggs, key: _kibana_metric_agg(ordered)}
        else:
            raise ValueError(f"bucket aggregation {b['type']!r} is not supported by this translation")
        if aggs:
            node["aggs"] = aggs
        aggs = {b["id"]: node}
    return {"size": 0, "query": _base_query(query, time_field, start_ms, end_ms), "aggs": aggs}


def kibana_fields(saved: dict[str, Any], time_field: str) -> list[FieldUse]:
    vis_state, query = kibana_vis_parts(saved)
    uses = [FieldUse(time_field, DATE, "time field")]
    uses += [FieldUse(f, ANY, "query") for f in query_fields(query)]
    for a in vis_state["aggs"]:
        field = a["params"].get("field")
        if a["type"] in _METRIC_FIELD_KIND:
            uses.append(FieldUse(field, _METRIC_FIELD_KIND[a["type"]], a["type"]))
        elif a["type"] == "terms":
            uses.append(FieldUse(field, KEYWORD, "terms"))
        elif a["type"] == "date_histogram":
            uses.append(FieldUse(field, DATE, "date_histogram"))
    return uses


# ---- reading answers --------------------------------------------------------------------


def leaf_values(response: dict[str, Any], metric_ids: list[str]) -> dict[str, list[Any]]:
    """Every value each metric took in the innermost buckets of a search response
    (``count`` metrics read ``doc_count``; percentiles give their first percent)."""
    found: dict[str, list[Any]] = {mid: [] for mid in metric_ids}

    def visit(bucket: dict[str, Any]) -> None:
        children = [v for v in bucket.values() if isinstance(v, dict) and "buckets" in v]
        if children:
            for child in children:
                inner = child["buckets"]
                for sub in inner.values() if isinstance(inner, dict) else inner:
                    visit(sub)
            return
        for mid in metric_ids:
            if mid == "count":
                found[mid].append(bucket.get("doc_count"))
                continue
            agg = bucket.get(mid)
            if agg is None:
                continue
            if "values" in agg:
                vals = agg["values"]
                found[mid].append(next(iter(vals.values())) if isinstance(vals, dict) else vals[0]["value"])
            else:
                found[mid].append(agg.get("value"))

    visit(response.get("aggregations", {}))
    return found
