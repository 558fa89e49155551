"""Fixtures of the dashboard tests: demo-like data in the real cluster, and its mappings.

``demo`` writes the documents of dashboards_demo.py into the test's own indices (the shared
``settings`` fixture gives the prefix and installs the templates) and deletes them afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dashboards_demo import DemoData, build, index

from playscope.config import Settings
from playscope.indices import FAMILIES


@dataclass
class Demo:
    settings: Settings
    data: DemoData
    client: Any

    @property
    def scripts(self) -> bool:
        """Whether the cluster runs Painless (the local Elasticsearch is a bare server without
        the lang-painless module; OpenSearch and every Elasticsearch distribution have it)."""
        nodes = self.client.nodes.info(metric="plugins")
        body = nodes.body if hasattr(nodes, "body") else nodes
        return all(any(m["name"] == "lang-painless" for m in n.get("modules", []))
                   for n in body["nodes"].values())

    def search(self, index_expr: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.client.search(index=index_expr, body=body, ignore_unavailable=True)
        return dict(resp.body if hasattr(resp, "body") else resp)


def _delete_prefixed(client: Any, prefix: str) -> None:
    names = client.indices.get(index=f"{prefix}playscope-*", ignore_unavailable=True, allow_no_indices=True)
    for name in list(names.body if hasattr(names, "body") else names):
        client.indices.delete(index=name, ignore_unavailable=True)


def demo_start_ms(windows: int = 12, window_ms: int = 60_000) -> int:
    """A window-aligned start that ends a few minutes ago, like a finished demo run."""
    now = int(time.time() * 1000)
    return (now - (windows + 5) * window_ms) // window_ms * window_ms


@pytest.fixture
def demo(settings: Settings, es: Any) -> Iterator[Demo]:
    data = build(demo_start_ms())
    index(es, data, settings.index_prefix)
    yield Demo(settings, data, es)
    _delete_prefixed(es, settings.index_prefix)


@pytest.fixture
def demo_opensearch(settings: Settings, opensearch: Any) -> Iterator[Demo]:
    data = build(demo_start_ms())
    index(opensearch, data, settings.index_prefix)
    yield Demo(settings, data, opensearch)
    _delete_prefixed(opensearch, settings.index_prefix)


def flat_mapping(properties: dict[str, Any], parent: str = "") -> dict[str, str]:
    """``{"by_status.5xx": "long", ...}`` from a mapping's properties."""
    out: dict[str, str] = {}
    for name, spec in properties.items():
        path = f"{parent}{name}"
        if "properties" in spec:
            out.update(flat_mapping(spec["properties"], f"{path}."))
        else:
            out[path] = spec.get("type", "object")
        for sub, sub_spec in spec.get("fields", {}).items():
            out[f"{path}.{sub}"] = sub_spec.get("type", "object")
    return out


def cluster_mappings(client: Any, prefix: str) -> dict[str, dict[str, str]]:
    """Create one empty daily index per family from the installed templates, read its mapping
    back from the cluster and return it flattened, by family name."""
    out = {}
    for name, family in FAMILIES.items():
        index_name = family.index_for({family.time_field: 1_700_000_000_000}, prefix)
        client.indices.create(index=index_name)
        got = client.indices.get_mapping(index=index_name)
        body = got.body if hasattr(got, "body") else got
        out[name] = flat_mapping(body[index_name]["mappings"]["properties"])
    return out


@pytest.fixture
def mappings(settings: Settings, es: Any) -> Iterator[dict[str, dict[str, str]]]:
    yield cluster_mappings(es, settings.index_prefix)
    _delete_prefixed(es, settings.index_prefix)
