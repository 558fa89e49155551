"""Where the committed dashboard files live, and how to read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
GRAFANA_DIR = HERE / "grafana"
DATASOURCES_FILE = GRAFANA_DIR / "provisioning" / "datasources" / "playscope.yaml"
PROVIDERS_FILE = GRAFANA_DIR / "provisioning" / "dashboards" / "playscope.yaml"
KIBANA_FILE = HERE / "kibana" / "playscope.ndjson"


def grafana_dashboards() -> dict[str, dict[str, Any]]:
    """The committed Grafana JSON models, by file name."""
    return {p.name: json.loads(p.read_text()) for p in sorted(GRAFANA_DIR.glob("*.json"))}


def grafana_datasources() -> list[dict[str, Any]]:
    return list(yaml.safe_load(DATASOURCES_FILE.read_text())["datasources"])


def grafana_providers() -> list[dict[str, Any]]:
    return list(yaml.safe_load(PROVIDERS_FILE.read_text())["providers"])


def kibana_objects(text: str | None = None) -> list[dict[str, Any]]:
    """The committed saved objects, one JSON object per non-empty line."""
    raw = KIBANA_FILE.read_text() if text is None else text
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def to_ndjson(objects: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(obj, sort_keys=True) + "\n" for obj in objects)
