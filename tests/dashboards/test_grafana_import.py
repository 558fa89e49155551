"""The UI-importable dashboards (dashboards/grafana-import/): every data source is an input the
importer fills in, declared in ``__inputs``; filled with the provisioned uids they are the
provisioned models; and they stay out of the folder file provisioning loads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dashboards.assets import GRAFANA_DIR, grafana_dashboards
from dashboards.build import stale

IMPORT_DIR = GRAFANA_DIR.parent / "grafana-import"
PLACEHOLDER = re.compile(r"\$\{(DS_[A-Z0-9_]+)\}")


def _refs(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_every_provisioned_dashboard_has_an_importable_twin() -> None:
    assert sorted(p.name for p in IMPORT_DIR.glob("*.json")) == sorted(grafana_dashboards())
    assert not stale(), "run python -m dashboards.build"


def test_every_data_source_is_a_declared_input_and_filling_them_gives_the_provisioned_model() -> None:
    for name, provisioned in grafana_dashboards().items():
        exported = json.loads((IMPORT_DIR / name).read_text())
        declared = {i["name"]: i for i in exported["__inputs"]}
        refs = _refs(exported)
        assert refs, name
        for ref in refs:
            match = PLACEHOLDER.fullmatch(ref["uid"])
            assert match, f"{name}: data source {ref['uid']!r} is not an import input"
            assert declared[match.group(1)]["pluginId"] == ref["type"]
        assert {r["id"] for r in exported["__requires"] if r["type"] == "datasource"} == {r["type"] for r in refs}
        text = (IMPORT_DIR / name).read_text()
        labels = {key: value["label"] for key, value in declared.items()}
        filled = json.loads(PLACEHOLDER.sub(lambda m, labels=labels: labels[m.group(1)], text))
        for key in ("__inputs", "__requires"):
            filled.pop(key)
        assert filled == {**provisioned, "id": None}, name


def test_file_provisioning_never_sees_the_import_files() -> None:
    assert not any(Path(p).is_relative_to(GRAFANA_DIR) for p in IMPORT_DIR.glob("*.json"))
