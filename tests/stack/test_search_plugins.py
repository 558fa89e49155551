"""The local search servers' modules: OpenSearch is the complete option (root endpoint, Painless,
the common analyzers), the local Elasticsearch lacks what the README says it lacks, and a
distribution without a required module is reported without stopping the start."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from playscope.stack import fetch, plugins
from playscope.stack.servers import OpenSearchServer


def _fake_dist(root: Path, modules: tuple[str, ...], installed: tuple[str, ...] = ()) -> Path:
    home = root / "opensearch-x"
    (home / "config").mkdir(parents=True)
    (home / "config" / "jvm.options").write_text("-Xlog:gc*:file=logs/gc.log\n")
    for folder, names in (("modules", modules), ("plugins", installed)):
        (home / folder).mkdir()
        for name in names:
            (home / folder / name).mkdir()
            (home / folder / name / "plugin-descriptor.properties").write_text(f"name={name}\n")
    return home


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# -- no server -------------------------------------------------------------------------------

def test_bundled_counts_modules_and_plugins_with_a_descriptor(tmp_path: Path) -> None:
    home = _fake_dist(tmp_path, ("lang-painless",), installed=("analysis-icu",))
    (home / "modules" / "half-unpacked").mkdir()  # no descriptor: not a module
    assert plugins.bundled(home) == {"lang-painless", "analysis-icu"}
    assert plugins.missing(home, ["analysis-icu", "analysis-common", "lang-painless"]) == ["analysis-common"]


def test_opensearch_prepare_warns_about_a_missing_module_and_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dist = _fake_dist(tmp_path, ("lang-painless",))
    before = _tree(dist)
    server = OpenSearchServer(tmp_path / "node", port=19999, dist_cache=tmp_path)
    with caplog.at_level(logging.WARNING, logger="playscope.stack"):
        server._prepare(dist)
        server._prepare(dist)  # a second start: same check, nothing installed or changed
    warnings = [r for r in caplog.records if r.getMessage() == "stack.modules_missing"]
    assert [getattr(r, "missing", None) for r in warnings] == ["analysis-common", "analysis-common"]
    assert "http.port: 19999" in (server.conf_dir / "opensearch.yml").read_text()
    assert _tree(dist) == before  # the distribution is only read


def test_a_complete_opensearch_distribution_gives_no_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dist = _fake_dist(tmp_path, plugins.OPENSEARCH_REQUIRED)
    server = OpenSearchServer(tmp_path / "node", port=19999, dist_cache=tmp_path)
    with caplog.at_level(logging.WARNING, logger="playscope.stack"):
        server._prepare(dist)
    assert not [r for r in caplog.records if r.getMessage() == "stack.modules_missing"]


# -- the shared stack ------------------------------------------------------------------------

def _node_modules(url: str) -> set[str]:
    nodes = httpx.get(f"{url}/_nodes/plugins", timeout=10).json()["nodes"]
    return {m["name"] for node in nodes.values() for m in node["modules"] + node.get("plugins", [])}


def _painless_probe(client: Any, index: str) -> dict[str, Any]:
    """A script query and a bucket_script aggregation (what the dashboards' ratios send)."""
    client.indices.create(index=index, body={"mappings": {"properties": {"n": {"type": "long"},
                                                                          "k": {"type": "keyword"}}}})
    for n, k in ((1, "a"), (3, "a"), (5, "b")):
        client.index(index=index, body={"n": n, "k": k}, refresh=True)
    return dict(client.search(index=index, body={
        "size": 0,
        "query": {"script": {"script": {"lang": "painless", "source": "doc['n'].value > params.t",
                                        "params": {"t": 2}}}},
        "aggs": {"by_k": {"terms": {"field": "k"}, "aggs": {
            "total": {"sum": {"field": "n"}},
            "twice": {"bucket_script": {"buckets_path": {"s": "total"}, "script": "params.s * 2"}}}}},
    }))


@pytest.mark.opensearch
def test_local_opensearch_answers_the_root_endpoint(stack: Any) -> None:
    resp = httpx.get(stack.opensearch.url + "/", timeout=10)
    assert resp.status_code == 200
    version = resp.json()["version"]
    assert version["distribution"] == "opensearch"
    assert version["number"] == fetch.versions()["opensearch"]


@pytest.mark.opensearch
def test_local_opensearch_runs_painless_and_has_the_common_analyzers(stack: Any, opensearch: Any) -> None:
    assert plugins.missing(stack.opensearch.fetch(), plugins.OPENSEARCH_REQUIRED) == []
    assert set(plugins.OPENSEARCH_REQUIRED) <= _node_modules(stack.opensearch.url)
    index = f"t{uuid.uuid4().hex[:8]}-painless"
    try:
        resp = _painless_probe(opensearch, index)
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)
    assert resp["hits"]["total"]["value"] == 2  # n = 3 and n = 5
    buckets = {b["key"]: b["twice"]["value"] for b in resp["aggregations"]["by_k"]["buckets"]}
    assert buckets == {"a": 6.0, "b": 10.0}
    tokens = opensearch.indices.analyze(body={"tokenizer": "whitespace", "filter": ["word_delimiter_graph"],
                                              "text": "Wi-Fi"})
    assert [t["token"] for t in tokens["tokens"]] == ["Wi", "Fi"]


def test_local_elasticsearch_lacks_what_the_readme_says(stack: Any, es: Any) -> None:
    """Holds while the pinned integ-test-zip is as described; when it fails, the README's
    "local stack" section and ``plugins.ELASTICSEARCH_LACKS`` need updating."""
    url = stack.elasticsearch.url
    assert plugins.bundled(stack.elasticsearch.fetch()) == plugins.ELASTICSEARCH_INTEG_TEST_MODULES
    assert _node_modules(url) == plugins.ELASTICSEARCH_INTEG_TEST_MODULES
    assert not set(plugins.ELASTICSEARCH_LACKS) & _node_modules(url)
    assert httpx.get(url + "/", timeout=10).status_code == 405  # no rest-root
    index = f"t{uuid.uuid4().hex[:8]}-painless"
    try:
        with pytest.raises(Exception, match="painless"):
            _painless_probe(es, index)
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
