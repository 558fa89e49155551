"""The indexer against the real stack: Kafka, Elasticsearch and OpenSearch, both backends."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from playscope import topics
from playscope.config import Settings
from playscope.indices import FAMILIES

from .helpers import committed_equals_end, config, count, produce, running_indexer, wait_for

NOW = int(time.time() * 1000) // 1000 * 1000
BACKENDS = ["elasticsearch", "opensearch"]


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, settings: Settings, es: Any, opensearch: Any
           ) -> tuple[Settings, Any]:
    """(settings writing to one backend, a client of that backend)."""
    name = request.param
    return settings.model_copy(update={"backend": name}), (es if name == "elasticsearch" else opensearch)


def pattern(settings: Settings, family: str) -> str:
    return f"{settings.index_prefix}{FAMILIES[family].pattern}"


def event(i: int, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"e{i}", "session_id": f"s{i % 7}", "ts": NOW + i, "type": "heartbeat",
            "cdn": f"cdn{i % 3}", "bitrate_kbps": 3000 + i, **extra}


ONE_OF_EACH: dict[str, dict[str, Any]] = {
    topics.PLAYBACK_EVENTS: event(1, noisy_field="kept in _source"),
    topics.SERVICE_LOGS: {"ts": NOW, "service": "api", "message": "GET /x", "status": 503,
                          "latency_ms": 12.5, "level": "ERROR"},
    topics.QOE_SESSIONS: {"session_id": "s1", "start_ts": NOW, "end_ts": NOW + 5000, "play_ms": 4000,
                          "outcome": "completed", "cdn": "c"},
    topics.QOE_METRICS: {"window_start": NOW, "window_end": NOW + 60000, "group": "cdn", "cdn": "c",
                         "attempts": 3, "rebuffer_ratio": 0.1},
    topics.SERVICE_METRICS: {"window_start": NOW, "window_end": NOW + 60000, "group": "service",
                             "service": "api", "requests": 10, "by_status": {"5xx": 2}},
    topics.ALERTS: {"ts": NOW, "status": "firing", "rule": "r", "severity": "critical",
                    "group": {"cdn": "c"}, "value": 0.2, "threshold": 0.05, "window_start": NOW},
    topics.DEADLETTER: {"ts": NOW, "reason": "ts: is required", "source": "collector", "original": "{}"},
}

EXPECTED_TYPES = {  # family -> (field, mapped type)
    "playback": ("cdn", "keyword"),
    "logs": ("status", "short"),
    "sessions": ("start_ts", "date"),
    "qoe": ("attempts", "long"),
    "service": ("latency_ms_p99", "double"),
    "alerts": ("value", "double"),
    "deadletter": ("source", "keyword"),
}


def test_each_topic_lands_in_its_daily_index_with_its_mapping(target: tuple[Settings, Any]) -> None:
    settings, client = target
    for topic, record in ONE_OF_EACH.items():
        produce(settings, topic, [record, record])  # the duplicate must not add a document
    with running_indexer(settings) as indexer:
        wait_for(lambda: all(committed_equals_end(settings, t) for t in ONE_OF_EACH),
                 what="every topic committed")
    day = time.strftime("%Y.%m.%d", time.gmtime(NOW / 1000))
    for family, (field, mapped) in EXPECTED_TYPES.items():
        index = f"{settings.index_prefix}playscope-{family}-{day}"
        assert count(client, index) == 1, family
        mapping = client.indices.get_mapping(index=index)[index]["mappings"]
        assert mapping["dynamic"] in (False, "false")
        assert mapping["properties"][field]["type"] == mapped, family
    playback = f"{settings.index_prefix}playscope-playback-{day}"
    doc = client.get(index=playback, id="e1")
    assert doc["_source"]["noisy_field"] == "kept in _source"
    mapping = client.indices.get_mapping(index=playback)[playback]["mappings"]
    assert "noisy_field" not in mapping["properties"]
    for family in EXPECTED_TYPES:
        assert indexer.metrics.value("playscope_indexer_received_events_total", {"family": family}) == 2
        assert indexer.metrics.value("playscope_indexer_sent_events_total", {"family": family}) >= 1
    assert indexer.deadlettered_total == 0


def test_duplicates_and_a_replay_from_the_beginning_give_one_document_each(
        target: tuple[Settings, Any]) -> None:
    settings, client = target
    events = [event(i) for i in range(3000)]
    logs = [{"ts": NOW + i, "service": "api", "message": f"line {i % 500}"} for i in range(500)]
    produce(settings, topics.PLAYBACK_EVENTS, events + events[:700], key=lambda r: r["session_id"].encode())
    produce(settings, topics.SERVICE_LOGS, logs + logs[:100])
    with running_indexer(settings) as indexer:
        wait_for(lambda: committed_equals_end(settings, topics.PLAYBACK_EVENTS)
                 and committed_equals_end(settings, topics.SERVICE_LOGS), what="all offsets committed")
    assert count(client, pattern(settings, "playback")) == 3000
    assert count(client, pattern(settings, "logs")) == 500
    assert indexer.metrics.value("playscope_indexer_received_events_total", {"family": "playback"}) == 3700

    replay_group = settings.group("indexer-replay")
    with running_indexer(settings, consumer_overrides={"group.id": replay_group}) as replay:
        wait_for(lambda: committed_equals_end(settings, topics.PLAYBACK_EVENTS, replay_group),
                 what="replay committed")
    assert replay.metrics.value("playscope_indexer_received_events_total", {"family": "playback"}) == 3700
    assert count(client, pattern(settings, "playback")) == 3000
    assert count(client, pattern(settings, "logs")) == 500


def test_refused_documents_are_deadlettered_while_the_rest_lands(target: tuple[Settings, Any]) -> None:
    settings, client = target
    good = [{"ts": NOW + i, "service": "api", "message": f"ok {i}", "status": 200} for i in range(200)]
    conflict = {"ts": NOW, "service": "api", "message": "bad status", "status": "not-a-number"}
    bad: list[Any] = [conflict, b"{not json", b'{"service":"x"}']
    produce(settings, topics.SERVICE_LOGS, [*good[:100], *bad, *good[100:]])
    with running_indexer(settings) as indexer:
        wait_for(lambda: count(client, pattern(settings, "deadletter")) >= 3, what="3 dead-letters indexed")
        wait_for(lambda: committed_equals_end(settings, topics.SERVICE_LOGS), what="logs committed")
    assert count(client, pattern(settings, "logs")) == 200
    client.indices.refresh(index=pattern(settings, "deadletter"))
    hits = client.search(index=pattern(settings, "deadletter"), size=10)["hits"]["hits"]
    by_original = {h["_source"]["original"]: h["_source"] for h in hits}
    assert set(by_original) == {orjson.dumps(conflict).decode(), "{not json", '{"service":"x"}'}
    refused = by_original[orjson.dumps(conflict).decode()]
    assert refused["source"] == "indexer"
    assert refused["topic"] == settings.topic(topics.SERVICE_LOGS)
    assert "status" in refused["reason"] and "parsing_exception" in refused["reason"]
    assert "not valid JSON" in by_original["{not json"]["reason"]
    assert by_original['{"service":"x"}']["field"] == "ts"
    assert indexer.metrics.value("playscope_indexer_deadlettered_events_total",
                                 {"family": "logs", "error_type": "invalid_record"}) == 2
    assert committed_equals_end(settings, topics.DEADLETTER)


def test_later_versions_of_a_document_win_across_concurrent_batches(settings: Settings, es: Any) -> None:
    """A big batch ends with version 1 of a session; a tiny batch right after holds version 2.
    With several senders the tiny one would land first unless batches sharing an id wait."""
    pad = "x" * 8000
    big = [{"session_id": f"other{i}", "start_ts": NOW, "play_ms": i, "pad": pad} for i in range(2999)]
    records = [*big, {"session_id": "same", "start_ts": NOW, "play_ms": 1},
               {"session_id": "same", "start_ts": NOW, "play_ms": 2}]
    produce(settings, topics.QOE_SESSIONS, records, key=lambda r: b"k")  # one partition, in order
    cfg = config(batch_max_docs=3000, batch_max_bytes=80 * 1024 * 1024, batch_max_wait_s=0.01,
                 senders=4, max_pending_batches=8)
    with running_indexer(settings, cfg):
        wait_for(lambda: committed_equals_end(settings, topics.QOE_SESSIONS), what="sessions committed")
    es.indices.refresh(index=pattern(settings, "sessions"))
    hits = es.search(index=pattern(settings, "sessions"), query={"ids": {"values": ["same"]}})["hits"]["hits"]
    assert [h["_source"]["play_ms"] for h in hits] == [2]
    assert count(es, pattern(settings, "sessions")) == 3000


def test_retention_sweep_deletes_only_expired_daily_indices(target: tuple[Settings, Any],
                                                            tmp_path: Any) -> None:
    import subprocess
    import sys

    import yaml

    settings, client = target
    old_ts = NOW - 40 * 86_400_000
    produce(settings, topics.PLAYBACK_EVENTS, [event(1, ts=old_ts), event(2)])
    produce(settings, topics.SERVICE_LOGS, [{"ts": old_ts, "service": "a", "message": "m"}])
    with running_indexer(settings):
        wait_for(lambda: committed_equals_end(settings, topics.PLAYBACK_EVENTS)
                 and committed_equals_end(settings, topics.SERVICE_LOGS), what="committed")
    before = sorted(client.indices.get(index=f"{settings.index_prefix}playscope-*"))
    assert len(before) == 3
    cfg_file = tmp_path / "playscope.yaml"
    cfg_file.write_text(yaml.safe_dump({"index_prefix": settings.index_prefix, "backend": settings.backend}))
    done = subprocess.run(
        [sys.executable, "-m", "playscope.cli", "indexer", "--config", str(cfg_file),
         "--retention-only", "--retention-days", "30"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    old_day = time.strftime("%Y.%m.%d", time.gmtime(old_ts / 1000))
    expired = sorted(f"{settings.index_prefix}playscope-{f}-{old_day}" for f in ("logs", "playback"))
    assert sorted(done.stdout.split()) == sorted(["deleted"] * 2 + expired)
    after = sorted(client.indices.get(index=f"{settings.index_prefix}playscope-*"))
    assert after == sorted(set(before) - set(expired))
    assert count(client, pattern(settings, "playback")) == 1
