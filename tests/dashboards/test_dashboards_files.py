"""The committed dashboard files: up to date with their builders, structurally valid, and the
validator really refuses what Grafana file provisioning and Kibana's import would refuse."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from dashboards import assets, build
from dashboards.esquery import auto_interval, query_fields
from dashboards.validate import all_problems, grafana_problems, kibana_problems
from playscope.indices import FAMILIES

REPO = Path(__file__).resolve().parents[2]
EXPECTED_BOARDS = {"qoe-overview.json", "service-health.json", "pipeline-health.json", "alerts-timeline.json"}


def _targets(board: dict) -> list[dict]:
    return [t for p in board["panels"] for t in p.get("targets", [])]


def test_committed_files_match_their_builders() -> None:
    assert build.stale() == []


def test_every_file_validates() -> None:
    assert all_problems() == []


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    boards = assets.grafana_dashboards()
    assert set(boards) == EXPECTED_BOARDS
    uids = [b["uid"] for b in boards.values()]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("name", sorted(EXPECTED_BOARDS))
def test_raw_model_for_file_provisioning(name: str) -> None:
    text = (assets.GRAFANA_DIR / name).read_text()
    board = json.loads(text)
    assert "${DS_" not in text and "__inputs" not in board
    assert board["id"] is None
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    provisioned = {ds["uid"] for ds in assets.grafana_datasources()}
    used = {t["datasource"]["uid"] for t in _targets(board)} | {p["datasource"]["uid"] for p in board["panels"]
                                                                if "datasource" in p}
    assert used and used <= provisioned


def test_window_panels_always_select_one_group() -> None:
    """A window target without a group filter would add up every group (cdn and cdn+country...)."""
    for name, board in assets.grafana_dashboards().items():
        for t in _targets(board):
            if t["datasource"]["uid"] == "playscope-es":
                assert re.match(r'^group:("?)[a-z+]+\1$', t["query"]), (name, t["query"])
                dims = {b["field"] for b in t["bucketAggs"] if b["type"] == "terms"}
                group = t["query"].split(":", 1)[1].strip('"')
                assert dims <= set(group.split("+")), (name, t["query"], dims)


def test_qoe_overview_covers_each_dimension() -> None:
    board = assets.grafana_dashboards()["qoe-overview.json"]
    titles = {p["title"] for p in board["panels"]}
    for dim in ("cdn", "isp", "device", "country"):
        assert {f"Rebuffer ratio by {dim}", f"Failure rate by {dim}", f"Attempts by {dim}"} <= titles
    assert {"Attempts", "Plays", "Startup time p50", "Startup time p95", "Rebuffer ratio", "Failure rate"} <= titles


def test_provisioning_files() -> None:
    datasources = assets.grafana_datasources()
    by_uid = {ds["uid"]: ds for ds in datasources}
    assert by_uid["playscope-es"]["type"] == "elasticsearch"
    assert by_uid["playscope-prometheus"]["type"] == "prometheus"
    indices = ",".join(ds["jsonData"]["index"] for ds in datasources if ds["type"] == "elasticsearch")
    for family in ("qoe", "service", "sessions", "alerts"):
        assert FAMILIES[family].pattern in indices
    for ds in datasources:
        if ds["type"] == "elasticsearch":
            first = ds["jsonData"]["index"].split(",")[0]
            family = next(f for f in FAMILIES.values() if f.pattern == first)
            assert ds["jsonData"]["timeField"] == family.time_field
    providers = assets.grafana_providers()
    assert providers[0]["type"] == "file" and providers[0]["options"]["path"]


def _prometheus_names_in_code() -> set[str]:
    names: set[str] = set()
    for folder in ("collectors", "streams", "indexers", "alerts"):
        for path in (REPO / folder).rglob("*.py"):
            names |= set(re.findall(r"[\"'](playscope_[a-z0-9_]+)[\"']", path.read_text()))
    return names


def test_pipeline_panels_use_metrics_the_components_export() -> None:
    exported = _prometheus_names_in_code()
    board = assets.grafana_dashboards()["pipeline-health.json"]
    used = set()
    for t in _targets(board):
        for name in re.findall(r"\bplayscope_[a-z0-9_]+", t["expr"]):
            used.add(re.sub(r"_(bucket|count|sum)$", "", name) if name.endswith("_bucket") else name)
    assert used, "no playscope metric in the pipeline dashboard"
    missing = sorted(used - exported)
    assert missing == [], f"metrics no component exports: {missing}"
    for component in ("collector", "agent", "streams", "indexer", "alerts"):
        assert any(n.startswith(f"playscope_{component}_") for n in used), component


def test_kibana_objects_parse_and_reference_existing_data_views() -> None:
    objects = assets.kibana_objects()
    views = {o["id"]: o for o in objects if o["type"] == "index-pattern"}
    assert {v["attributes"]["title"] for v in views.values()} == {f.pattern for f in FAMILIES.values()}
    for obj in objects:
        for ref in obj["references"]:
            if ref["type"] == "index-pattern":
                assert ref["id"] in views, (obj["id"], ref)
    dashboards = [o for o in objects if o["type"] == "dashboard"]
    assert len(dashboards) == 3
    vis_ids = {o["id"] for o in objects if o["type"] == "visualization"}
    for d in dashboards:
        assert {r["id"] for r in d["references"]} <= vis_ids
        assert len(json.loads(d["attributes"]["panelsJSON"])) == len(d["references"])


# ---- the validator refuses broken files (so the tests above can fail) -------------------


def _qoe() -> dict:
    return copy.deepcopy(assets.grafana_dashboards()["qoe-overview.json"])


def test_validator_refuses_placeholders_ids_and_unknown_sources() -> None:
    ds = assets.grafana_datasources()
    board = _qoe()
    board["panels"][1]["targets"][0]["datasource"] = {"type": "elasticsearch", "uid": "${DS_ELASTICSEARCH}"}
    board["panels"][2]["id"] = board["panels"][3]["id"]
    board["id"] = 17
    problems = "\n".join(grafana_problems("qoe", board, ds))
    assert "placeholder" in problems
    assert "duplicate panel ids" in problems
    assert "'id' must be null" in problems
    assert "is not provisioned" in problems


def test_validator_refuses_dangling_bucket_script_and_kibana_reference() -> None:
    board = _qoe()
    target = next(t for t in _targets(board) if any(m["type"] == "bucket_script" for m in t["metrics"]))
    target["metrics"] = [m for m in target["metrics"] if m["type"] == "bucket_script"]
    assert any("missing metric" in p for p in grafana_problems("qoe", board, assets.grafana_datasources()))
    objects = [o for o in assets.kibana_objects() if o["id"] != "playscope-qoe" or o["type"] != "index-pattern"]
    assert any("missing index-pattern 'playscope-qoe'" in p for p in kibana_problems(objects))


def test_query_fields_and_auto_interval() -> None:
    assert query_fields('group:"cdn+country" AND cdn:oca-7') == ["group", "cdn"]
    assert query_fields("_exists_:startup_ms") == ["startup_ms"]
    assert query_fields("status:firing AND severity:critical") == ["status", "severity"]
    assert auto_interval(0, 3_600_000) == "30s"
    assert auto_interval(0, 7 * 86_400_000) == "3600s"
