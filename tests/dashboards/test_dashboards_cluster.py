"""Every panel against the real cluster: the fields it uses exist in the mappings the templates
give, with a type its aggregation accepts, and its query, run as the search Grafana or Kibana
would send, returns data from demo-like documents."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Demo, cluster_mappings

from dashboards import assets
from dashboards.datasources import es_indices, es_time_field
from dashboards.esquery import (
    ANY,
    FIELD_TYPES_FOR,
    FieldUse,
    apply_bucket_scripts,
    grafana_fields,
    grafana_search,
    kibana_fields,
    kibana_search,
    kibana_vis_parts,
    leaf_values,
)
from playscope.indices import FAMILIES

ES_FAMILIES_BY_UID = {"playscope-es": ("qoe", "service"), "playscope-es-sessions": ("sessions",),
                      "playscope-es-alerts": ("alerts",)}


def _es_panels() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for name, board in assets.grafana_dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == "elasticsearch":
                    out.append((f"{name} / {panel['title']} / {target['refId']}", panel, target))
    return out


def _visualizations() -> list[dict[str, Any]]:
    return [o for o in assets.kibana_objects() if o["type"] == "visualization"]


def _data_view_family(vis: dict[str, Any]) -> str:
    view_id = next(r["id"] for r in vis["references"] if r["type"] == "index-pattern")
    return view_id.removeprefix("playscope-")


def _type_problems(where: str, uses: list[FieldUse], families: tuple[str, ...],
                   mappings: dict[str, dict[str, str]]) -> list[str]:
    problems = []
    for use in uses:
        types = {mappings[f][use.field] for f in families if use.field in mappings[f]}
        if not types:
            problems.append(f"{where}: field {use.field!r} ({use.why}) is not mapped in {families}")
        elif use.kind != ANY and not types <= FIELD_TYPES_FOR[use.kind]:
            problems.append(f"{where}: field {use.field!r} is {sorted(types)}, {use.why} needs {use.kind}")
    return problems


def test_every_panel_field_is_mapped_with_a_suitable_type(mappings: dict[str, dict[str, str]]) -> None:
    panels = _es_panels()
    assert len(panels) > 40
    problems: list[str] = []
    for where, _panel, target in panels:
        families = ES_FAMILIES_BY_UID[target["datasource"]["uid"]]
        problems += _type_problems(where, grafana_fields(target), families, mappings)
    for vis in _visualizations():
        family = _data_view_family(vis)
        uses = kibana_fields(vis, FAMILIES[family].time_field)
        problems += _type_problems(f"kibana {vis['id']}", uses, (family,), mappings)
    assert problems == []


def test_type_check_catches_a_wrong_field(mappings: dict[str, dict[str, str]]) -> None:
    """The check above can fail: a terms on a number and an avg on a keyword are refused."""
    uses = [FieldUse("attempts", "keyword", "terms"), FieldUse("cdn", "numeric", "avg"),
            FieldUse("rebuffer_ration", "numeric", "avg")]
    problems = _type_problems("x", uses, ("qoe",), mappings)
    assert len(problems) == 3


def _visible_metric_ids(target: dict[str, Any]) -> list[str]:
    return ["count" if m["type"] == "count" else m["id"] for m in target["metrics"] if not m.get("hide")]


def _check_response(where: str, resp: dict[str, Any], metric_ids: list[str]) -> list[str]:
    values = leaf_values(resp, metric_ids)
    problems = []
    for mid, got in values.items():
        useful = [v for v in got if v is not None and v != 0]
        if not useful:
            problems.append(f"{where}: metric {mid} returned no data ({len(got)} buckets)")
    return problems


def _run_grafana_panels(demo: Demo) -> list[str]:
    start, end = demo.data.start_ms, demo.data.end_ms
    prefix = demo.settings.index_prefix
    problems: list[str] = []
    scripts = demo.scripts
    for where, _panel, target in _es_panels():
        body = grafana_search(target, start, end, scripts=scripts)
        uid = target["datasource"]["uid"]
        assert target["timeField"] == es_time_field(uid)
        try:
            resp = demo.search(es_indices(uid, prefix), body)
        except Exception as exc:  # a refused search is a finding, reported with its panel
            problems.append(f"{where}: search refused: {getattr(exc, 'info', None) or exc}")
            continue
        if any(m["type"] == "raw_data" for m in target["metrics"]):
            if not resp["hits"]["hits"]:
                problems.append(f"{where}: no documents")
            continue
        if not scripts:
            apply_bucket_scripts(resp, target)
        problems += _check_response(where, resp, _visible_metric_ids(target))
    return problems


def test_every_grafana_panel_returns_demo_data(demo: Demo) -> None:
    assert _run_grafana_panels(demo) == []


def test_every_kibana_visualization_returns_demo_data(demo: Demo) -> None:
    start, end = demo.data.start_ms, demo.data.end_ms
    problems: list[str] = []
    for vis in _visualizations():
        family = FAMILIES[_data_view_family(vis)]
        body = kibana_search(vis, family.time_field, start, end)
        try:
            resp = demo.search(f"{demo.settings.index_prefix}{family.pattern}", body)
        except Exception as exc:  # a refused search is a finding, reported with its visualization
            problems.append(f"kibana {vis['id']}: search refused: {getattr(exc, 'info', None) or exc}")
            continue
        vis_state, _query = kibana_vis_parts(vis)
        metric_ids = ["count" if a["type"] == "count" else a["id"] for a in vis_state["aggs"]
                      if a["schema"] == "metric"]
        problems += _check_response(f"kibana {vis['id']}", resp, metric_ids)
    assert problems == []


def test_rebuffer_ratio_by_cdn_shows_the_incident(demo: Demo) -> None:
    """The QoE panel's numbers are right, not just present: oca-7's ratio of sums over the
    range equals the one computed from the indexed documents, and it stands out."""
    board = assets.grafana_dashboards()["qoe-overview.json"]
    panel = next(p for p in board["panels"] if p["title"] == "Rebuffer ratio by cdn")
    target = dict(panel["targets"][0])
    target["bucketAggs"] = [b for b in target["bucketAggs"] if b["type"] == "terms"]  # whole range
    resp = demo.search(es_indices("playscope-es", demo.settings.index_prefix),
                       grafana_search(target, demo.data.start_ms, demo.data.end_ms, scripts=demo.scripts))
    apply_bucket_scripts(resp, target) if not demo.scripts else None
    got = {b["key"]: b["3"]["value"] for b in resp["aggregations"]["8"]["buckets"]}
    cdn_docs = [d for d in demo.data.docs["qoe"] if d["group"] == "cdn"]
    for cdn, value in got.items():
        docs = [d for d in cdn_docs if d["cdn"] == cdn]
        expected = sum(d["rebuffer_ms"] for d in docs) / sum(d["watched_ms"] for d in docs)
        assert value == pytest.approx(expected, rel=1e-9)
    assert set(got) == {"oca-7", "akam-2", "fastly-1"}
    assert got["oca-7"] > 2 * max(got["akam-2"], got["fastly-1"])


def test_a_panel_on_the_wrong_group_finds_nothing(demo: Demo) -> None:
    """The data check can fail: a by-CDN panel that filtered on a group with no cdn field
    returns empty terms buckets."""
    board = assets.grafana_dashboards()["qoe-overview.json"]
    target = dict(next(p for p in board["panels"] if p["title"] == "Attempts by cdn")["targets"][0])
    target["query"] = "group:device"
    resp = demo.search(es_indices("playscope-es", demo.settings.index_prefix),
                       grafana_search(target, demo.data.start_ms, demo.data.end_ms))
    assert _check_response("x", resp, ["1"]) != []


@pytest.mark.opensearch
def test_grafana_panels_on_opensearch(demo_opensearch: Demo) -> None:
    """The same searches work when the indexer writes to OpenSearch (PLAYSCOPE_BACKEND)."""
    assert _run_grafana_panels(demo_opensearch) == []


def test_opensearch_mappings_suit_the_panels(settings: Any, opensearch: Any) -> None:
    mappings = cluster_mappings(opensearch, settings.index_prefix)
    try:
        problems: list[str] = []
        for where, _panel, target in _es_panels():
            problems += _type_problems(where, grafana_fields(target), ES_FAMILIES_BY_UID[target["datasource"]["uid"]],
                                       mappings)
        assert problems == []
    finally:
        for family in FAMILIES.values():
            opensearch.indices.delete(index=family.index_for({family.time_field: 1_700_000_000_000},
                                                             settings.index_prefix), ignore_unavailable=True)
