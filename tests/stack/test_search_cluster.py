"""A two-node OpenSearch cluster on free ports: templates with one replica put every shard on
both nodes (green), the data node killed with SIGKILL leaves the cluster yellow with every
document searchable and writable on the other, and its restart makes it green again.

node-1 is cluster manager and data node, node-2 a data node only, so losing node-2 leaves the
only cluster-manager-eligible node, and its election quorum, in place (docs/scaling.md: a third,
voting-only node when either data node may fail). Documents go through the indexer's own bulk
path (encoder, BulkWriter, OpenSearch backend). About three minutes on two cores.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opensearchpy import OpenSearch

from indexers.backends import OpenSearchBackend
from indexers.bulk import BulkWriter
from indexers.documents import DAY_MS, Encoder
from indexers.metrics import IndexerMetrics
from playscope import topics
from playscope.config import IndexSettings, IndicesConfig, SearchConfig
from playscope.provision import ensure_templates
from playscope.stack.ports import free_port
from playscope.stack.servers import (
    ElasticsearchServer,
    OpenSearchServer,
    SearchMembership,
    default_dist_cache,
    stop_all,
    tcp_open,
)

DAY0_MS = 1_700_006_400_000  # a UTC midnight: the documents fall on days 0, 1 and 2 after it
ONE_REPLICA = IndicesConfig(all=IndexSettings(replicas=1))


def _membership(name: str, transports: tuple[int, ...], roles: tuple[str, ...],
                managers: tuple[str, ...] = ()) -> SearchMembership:
    return SearchMembership(node_name=name, cluster_name="playscope-pair", seed_transport_ports=transports,
                            initial_managers=managers, roles=roles)


def test_a_member_is_configured_for_discovery_and_a_lone_server_stays_single_node(tmp_path: Path) -> None:
    member = _membership("node-1", (19301, 19302), ("cluster_manager", "data"), ("node-1",))
    node = OpenSearchServer(tmp_path / "n1", 19201, 19301, dist_cache=tmp_path, membership=member, heap="512m")
    lines = node._settings()
    assert "discovery.type: single-node" not in lines
    assert {"cluster.name: playscope-pair", "node.name: node-1",
            "discovery.seed_hosts: [127.0.0.1:19301, 127.0.0.1:19302]",
            "cluster.initial_cluster_manager_nodes: [node-1]",
            "node.roles: [cluster_manager, data]"} <= set(lines)
    assert (node.name, node.heap) == ("opensearch-node-1", "512m")
    data_only = OpenSearchServer(tmp_path / "n2", 19202, 19302, dist_cache=tmp_path,
                                 membership=_membership("node-2", (19301,), ("data",)))
    assert "node.roles: [data]" in data_only._settings()
    assert not any(line.startswith("cluster.initial_") for line in data_only._settings())
    es = ElasticsearchServer(tmp_path / "es", 19203, 19303, dist_cache=tmp_path,
                             membership=_membership("es-1", (19303,), ("master", "data"), ("es-1",)))
    assert "cluster.initial_master_nodes: [es-1]" in es._settings()
    for lone in (OpenSearchServer(tmp_path / "os"), ElasticsearchServer(tmp_path / "es")):
        assert lone.membership is None and lone.name == lone.product and lone.heap == "1g"
        assert {"discovery.type: single-node", "node.name: node-1",
                f"cluster.name: playscope-{lone.product}"} <= set(lone._settings())
        assert not any(line.startswith(("discovery.seed_hosts", "node.roles")) for line in lone._settings())


@pytest.fixture
def base() -> Iterator[Path]:
    """The nodes' homes. Not under tmp_path: as root the servers run as a service user, which
    cannot enter pytest's 0700 base directory."""
    folder = Path(tempfile.mkdtemp(prefix="playscope-search-cluster-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        if (port := free_port()) not in ports:
            ports.append(port)
    return ports


def _health(url: str, timeout_s: float, **wait: str) -> dict[str, Any]:
    """``_cluster/health`` once the ``wait_for_*`` conditions hold or ``timeout_s`` passed
    (then ``timed_out`` is true)."""
    params = {**{f"wait_for_{k}": v for k, v in wait.items()}, "timeout": f"{timeout_s:.0f}s"}
    resp = httpx.get(f"{url}/_cluster/health", params=params, timeout=timeout_s + 30)
    assert resp.status_code in (200, 408), resp.text
    return dict(resp.json())


def _shard_copies(url: str, pattern: str) -> dict[tuple[str, str], list[tuple[str, str, str | None]]]:
    """(index, shard) -> its copies as (p/r, state, node name)."""
    resp = httpx.get(f"{url}/_cat/shards/{pattern}", params={"format": "json", "h": "index,shard,prirep,state,node"},
                     timeout=30)
    resp.raise_for_status()
    copies: dict[tuple[str, str], list[tuple[str, str, str | None]]] = defaultdict(list)
    for row in resp.json():
        copies[(row["index"], row["shard"])].append((row["prirep"], row["state"], row.get("node")))
    return copies


def _assert_each_shard_on_both_nodes(url: str, pattern: str, indices: int) -> None:
    copies = _shard_copies(url, pattern)
    assert len(copies) == indices, copies
    for shard, found in copies.items():
        assert sorted(c[0] for c in found) == ["p", "r"], (shard, found)
        assert all(c[1] == "STARTED" for c in found), (shard, found)
        assert {c[2] for c in found} == {"node-1", "node-2"}, (shard, found)


def _playback(first: int, count: int, days: int) -> dict[str, bytes]:
    """event_id -> raw record, spread over ``days`` UTC days."""
    return {f"e{i}": orjson.dumps({"event_id": f"e{i}", "session_id": f"s{i % 7}", "type": "heartbeat",
                                   "ts": DAY0_MS + (i % days) * DAY_MS + i})
            for i in range(first, first + count)}


def _store(writer: BulkWriter, encoder: Encoder, records: dict[str, bytes]) -> None:
    outcome = writer.store([encoder.encode(topics.PLAYBACK_EVENTS, raw) for raw in records.values()])
    assert outcome.rejected == []
    assert outcome.stored == {"playback": len(records)}


def _searchable_ids(client: Any, pattern: str) -> set[str]:
    client.indices.refresh(index=pattern)
    hits = client.search(index=pattern, body={"size": 10_000, "_source": False,
                                              "query": {"match_all": {}}})["hits"]["hits"]
    return {hit["_id"] for hit in hits}


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.opensearch
def test_two_node_opensearch_stays_searchable_and_writable_when_the_data_node_is_killed(base: Path) -> None:
    http1, transport1, http2, transport2 = _distinct_free_ports(4)
    seeds = (transport1, transport2)
    dist = default_dist_cache().resolve()
    node1 = OpenSearchServer(base / "node-1", http1, transport1, dist_cache=dist, heap="512m",
                             membership=_membership("node-1", seeds, ("cluster_manager", "data"), ("node-1",)))
    node2 = OpenSearchServer(base / "node-2", http2, transport2, dist_cache=dist, heap="512m",
                             membership=_membership("node-2", seeds, ("data",)))
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    pattern = f"{prefix}playscope-playback-*"
    client = OpenSearch(node1.url, timeout=60)
    backend = OpenSearchBackend(SearchConfig(url=node1.url, request_timeout_s=60))
    writer = BulkWriter(backend, IndexerMetrics(), threading.Event(), retry_max_s=2.0)
    encoder = Encoder.for_settings(lambda name: name, ("playback",), prefix)
    try:
        started = time.monotonic()
        node1.start()
        node2.start()
        node1.wait_healthy(timeout_s=300)
        node2.wait_healthy(timeout_s=300)
        health = _health(node1.url, 120, nodes="2")
        print(f"two nodes in one cluster after {time.monotonic() - started:.1f} s")
        assert health["number_of_nodes"] == 2 and health["cluster_name"] == "playscope-pair"

        ensure_templates(client, prefix, ONE_REPLICA)
        first = _playback(0, 300, days=3)
        _store(writer, encoder, first)
        health = _health(node1.url, 120, status="green", no_initializing_shards="true")
        assert (health["status"], health["number_of_nodes"]) == ("green", 2), health
        settings = client.indices.get_settings(index=pattern)
        assert len(settings) == 3
        assert {s["settings"]["index"]["number_of_replicas"] for s in settings.values()} == {"1"}
        _assert_each_shard_on_both_nodes(node1.url, pattern, indices=3)
        assert _searchable_ids(client, pattern) == set(first)

        lost = sorted(index for (index, _), found in _shard_copies(node1.url, pattern).items()
                      if ("p", "STARTED", "node-2") in found)
        node2.kill()
        assert node2.pid() is None and not tcp_open("127.0.0.1", node2.transport_port)
        health = _health(node1.url, 120, nodes="1")
        assert health["number_of_nodes"] == 1, health
        assert health["status"] == "yellow", health  # every primary on node-1, its replica unassigned
        assert health["unassigned_shards"] >= 3 and health["active_primary_shards"] == health["active_shards"]
        print(f"node-2 killed; primaries promoted on node-1: {lost or 'none (all were there)'}")
        copies = _shard_copies(node1.url, pattern)
        assert all(("p", "STARTED", "node-1") in found for found in copies.values()), copies
        assert _searchable_ids(client, pattern) == set(first)

        second = _playback(300, 100, days=4)  # day 3 is a new index, made with its replica unassigned
        _store(writer, encoder, second)
        assert _searchable_ids(client, pattern) == set(first) | set(second)
        assert _health(node1.url, 5)["status"] == "yellow"

        restarted = time.monotonic()
        node2.start()
        node2.wait_healthy(timeout_s=300)
        health = _health(node1.url, 180, status="green", nodes="2", no_initializing_shards="true")
        print(f"node-2 back and the cluster green after {time.monotonic() - restarted:.1f} s")
        assert (health["status"], health["number_of_nodes"], health["unassigned_shards"]) == ("green", 2, 0), health
        _assert_each_shard_on_both_nodes(node1.url, pattern, indices=4)
        via_node2 = OpenSearch(node2.url, timeout=60)
        try:
            assert _searchable_ids(via_node2, pattern) == set(first) | set(second)
        finally:
            via_node2.close()
    finally:
        client.close()
        backend.close()
        stop_all([node1, node2])
        for node in (node1, node2):
            if node.is_running():
                node.kill()
