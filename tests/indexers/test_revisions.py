"""Revised windows (SPEC 7) on the real Elasticsearch and OpenSearch: the index keeps the
highest revision under one document id, whatever order a replay re-sends them in."""

from __future__ import annotations

import time
from typing import Any

import pytest

from playscope import topics
from playscope.config import Settings
from playscope.indices import FAMILIES, window_doc_id

from .helpers import committed_equals_end, config, count, produce, running_indexer, wait_for

NOW = int(time.time() * 1000) // 60_000 * 60_000


@pytest.fixture(params=["elasticsearch", "opensearch"])
def target(request: pytest.FixtureRequest, settings: Settings, es: Any, opensearch: Any
           ) -> tuple[Settings, Any]:
    name = request.param
    return settings.model_copy(update={"backend": name}), (es if name == "elasticsearch" else opensearch)


def qoe(i: int, revision: int | None) -> dict[str, Any]:
    """Window i of CDN c; its numbers tell the revisions apart (attempts = 100 + revision)."""
    record: dict[str, Any] = {"window_start": NOW + i * 60_000, "window_end": NOW + (i + 1) * 60_000,
                              "group": "cdn", "cdn": "c", "attempts": 100 + (revision or 0)}
    if revision is not None:
        record["revision"] = revision
    return record


def service(revision: int) -> dict[str, Any]:
    return {"window_start": NOW, "window_end": NOW + 60_000, "group": "service", "service": "api",
            "requests": 10 + revision, "revision": revision}


def stored(client: Any, settings: Settings, family: str, record: dict[str, Any]) -> tuple[int, int, int]:
    """(revision, version, the revision-telling number) of ``record``'s document."""
    day = time.strftime("%Y.%m.%d", time.gmtime(record["window_start"] / 1000))
    index = f"{settings.index_prefix}{FAMILIES[family].prefix}{day}"
    doc = client.get(index=index, id=window_doc_id(record))
    source = doc["_source"]
    return source.get("revision", 0), doc["_version"], source.get("attempts", source.get("requests"))


def test_the_highest_revision_stays_whatever_the_order(target: tuple[Settings, Any]) -> None:
    settings, client = target
    # one partition, in this order; A: 1 then 0 (a replay re-sent 0); B: 0, 1, 2 (B's 0 has no
    # revision field at all: counts as 0); C: 1, 1 again (same revision: accepted), then 0
    produce(settings, topics.QOE_METRICS, [qoe(0, 1), qoe(0, 0), qoe(1, None), qoe(1, 1), qoe(1, 2)],
            key=lambda r: b"k")
    produce(settings, topics.SERVICE_METRICS, [service(1), service(1), service(0)], key=lambda r: b"k")
    # one record per batch: every stale write meets the newer document in the backend
    with running_indexer(settings, config(batch_max_docs=1, senders=3)) as indexer:
        wait_for(lambda: committed_equals_end(settings, topics.QOE_METRICS)
                 and committed_equals_end(settings, topics.SERVICE_METRICS), what="windows committed")
    assert count(client, f"{settings.index_prefix}{FAMILIES['qoe'].pattern}") == 2
    assert count(client, f"{settings.index_prefix}{FAMILIES['service'].pattern}") == 1
    # what a dashboard panel asks (a sum over the group's windows) sees each window once
    summed = client.search(index=f"{settings.index_prefix}{FAMILIES['qoe'].pattern}",
                           body={"size": 0, "query": {"term": {"group": "cdn"}},
                                 "aggs": {"a": {"sum": {"field": "attempts"}}}})
    assert summed["aggregations"]["a"]["value"] == 101 + 102
    assert stored(client, settings, "qoe", qoe(0, 1)) == (1, 1, 101)
    assert stored(client, settings, "qoe", qoe(1, 2)) == (2, 2, 102)
    assert stored(client, settings, "service", service(1)) == (1, 1, 11)
    m = indexer.metrics
    assert m.value("playscope_indexer_stale_revisions_total", {"family": "qoe"}) == 1
    assert m.value("playscope_indexer_stale_revisions_total", {"family": "service"}) == 1
    assert m.value("playscope_indexer_sent_events_total", {"family": "qoe"}) == 4
    assert indexer.deadlettered_total == 0
    assert count(client, f"{settings.index_prefix}{FAMILIES['deadletter'].pattern}") == 0

    # a replay of everything in one batch: the older revision after a newer one in the same batch
    # is dropped there; what reaches the backend is not older than what it holds
    replay_group = settings.group("indexer-replay")
    with running_indexer(settings, consumer_overrides={"group.id": replay_group}) as replay:
        wait_for(lambda: committed_equals_end(settings, topics.QOE_METRICS, replay_group)
                 and committed_equals_end(settings, topics.SERVICE_METRICS, replay_group), what="replayed")
    assert stored(client, settings, "qoe", qoe(0, 1))[::2] == (1, 101)
    assert stored(client, settings, "qoe", qoe(1, 2))[::2] == (2, 102)
    assert stored(client, settings, "service", service(1))[::2] == (1, 11)
    assert replay.metrics.value("playscope_indexer_stale_revisions_total", {"family": "qoe"}) == 1
    assert replay.metrics.value("playscope_indexer_stale_revisions_total", {"family": "service"}) == 1
    assert replay.deadlettered_total == 0
    assert count(client, f"{settings.index_prefix}{FAMILIES['qoe'].pattern}") == 2


def test_revision_is_mapped_and_a_bad_one_is_deadlettered(target: tuple[Settings, Any]) -> None:
    settings, client = target
    produce(settings, topics.QOE_METRICS, [qoe(0, 0), {**qoe(1, 0), "revision": "one"}])
    with running_indexer(settings) as indexer:
        wait_for(lambda: committed_equals_end(settings, topics.QOE_METRICS), what="windows committed")
        wait_for(lambda: count(client, f"{settings.index_prefix}{FAMILIES['deadletter'].pattern}") == 1,
                 what="the bad revision dead-lettered")
    index = f"{settings.index_prefix}{FAMILIES['qoe'].pattern}"
    mapping = next(iter(client.indices.get_mapping(index=index).values()))["mappings"]
    assert mapping["properties"]["revision"]["type"] == "long"
    assert count(client, index) == 1
    hit = client.search(index=f"{settings.index_prefix}{FAMILIES['deadletter'].pattern}")["hits"]["hits"][0]
    assert hit["_source"]["field"] == "revision" and "revision must be" in hit["_source"]["reason"]
    assert indexer.metrics.value("playscope_indexer_deadlettered_events_total",
                                 {"family": "qoe", "error_type": "invalid_record"}) == 1
