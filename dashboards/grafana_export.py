"""The dashboards in Grafana's "export for sharing externally" form, for Dashboards > Import.

File provisioning reads the committed models as they are, with data sources referenced by
their playscope uids. The UI's import needs the other form: every data source reference is an
input (``${DS_PLAYSCOPE_ES}``) declared in ``__inputs``, so the user picks their own data source
while importing. The files under ``dashboards/grafana-import/`` are generated from the models
(``python -m dashboards.build``), outside ``grafana/`` so file provisioning never loads them too.
"""

from __future__ import annotations

import copy
from typing import Any

PLUGIN_NAMES = {"elasticsearch": "Elasticsearch", "prometheus": "Prometheus"}
MIN_GRAFANA = "10.0.0"


def input_name(uid: str) -> str:
    return "DS_" + "".join(c if c.isalnum() else "_" for c in uid).upper()


def _datasources(node: Any, found: dict[str, str]) -> None:
    """Collect every ``{"type": ..., "uid": ...}`` data source reference, by uid."""
    if isinstance(node, dict):
        ref = node.get("datasource")
        if isinstance(ref, dict) and isinstance(ref.get("uid"), str) and not ref["uid"].startswith("$"):
            found[ref["uid"]] = str(ref.get("type", ""))
        for value in node.values():
            _datasources(value, found)
    elif isinstance(node, list):
        for item in node:
            _datasources(item, found)


def _replace(node: Any) -> None:
    if isinstance(node, dict):
        ref = node.get("datasource")
        if isinstance(ref, dict) and isinstance(ref.get("uid"), str) and not ref["uid"].startswith("$"):
            node["datasource"] = {**ref, "uid": "${" + input_name(ref["uid"]) + "}"}
        for value in node.values():
            _replace(value)
    elif isinstance(node, list):
        for item in node:
            _replace(item)


def for_import(board: dict[str, Any]) -> dict[str, Any]:
    """``board`` with its data sources as import inputs, plus ``__inputs`` and ``__requires``."""
    found: dict[str, str] = {}
    _datasources(board, found)
    out = copy.deepcopy(board)
    _replace(out)
    inputs = [{"name": input_name(uid), "label": uid, "description": f"the data source provisioned as {uid}",
               "type": "datasource", "pluginId": kind, "pluginName": PLUGIN_NAMES.get(kind, kind)}
              for uid, kind in sorted(found.items())]
    requires = [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": MIN_GRAFANA}]
    requires += [{"type": "datasource", "id": kind, "name": PLUGIN_NAMES.get(kind, kind), "version": "1.0.0"}
                 for kind in sorted(set(found.values()))]
    return {"__inputs": inputs, "__requires": requires, **out, "id": None}
