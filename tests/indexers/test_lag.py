"""The lag gauge tells the truth: 0 on a topic written by a transactional producer once all is
indexed (its last offset is a commit marker, which no consumer ever returns), and the whole
backlog while this indexer holds no partitions (a dead static member still owns them)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import yaml
from confluent_kafka import Producer

from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config

from .helpers import committed_equals_end, config, count, indexer_process, produce, running_indexer, wait_for

NOW = int(time.time() * 1000)


def lag(indexer: Any, family: str) -> float | None:
    """The lag gauge of ``family`` (None until the lag thread first set it)."""
    return indexer.metrics.registry.get_sample_value("playscope_indexer_consumer_lag", {"family": family})


def test_transaction_markers_do_not_read_as_lag(settings: Settings, es: Any) -> None:
    producer = Producer(producer_config(settings.kafka, **{"transactional.id": f"{settings.topic_prefix}tx",
                                                        "message.timeout.ms": 60000}))
    producer.init_transactions(30)
    for batch in range(3):  # three transactions: a marker after each
        producer.begin_transaction()
        for i in range(20):
            alert = {"ts": NOW, "status": "firing", "rule": f"r{batch}-{i}", "severity": "critical",
                     "group": {"cdn": "c"}, "value": 0.2, "threshold": 0.05, "window_start": NOW}
            producer.produce(settings.topic(topics.ALERTS), orjson.dumps(alert), key=b"k")
        producer.commit_transaction(30)
    with running_indexer(settings, config(families=["alerts"], lag_interval_s=0.5)) as indexer:
        wait_for(lambda: count(es, f"{settings.index_prefix}playscope-alerts-*") == 60, what="60 alerts indexed")
        # committed offset = partition end, past the last marker (without that: end - 1 forever)
        wait_for(lambda: committed_equals_end(settings, topics.ALERTS), what="committed up to the end")
        wait_for(lambda: lag(indexer, "alerts") == 0.0, what="lag 0")


def events(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"event_id": f"{prefix}{i}", "session_id": f"s{i % 10}", "ts": NOW + i, "type": "heartbeat"}
            for i in range(n)]


def test_lag_counts_partitions_nobody_holds(settings: Settings, es: Any, tmp_path: Path) -> None:
    """A static member killed with SIGKILL keeps its partitions until its session times out
    (60 s here); an indexer joining meanwhile holds nothing, yet its gauge shows the backlog."""
    cfg_file = tmp_path / "playscope.yaml"
    cfg_file.write_text(yaml.safe_dump({
        "kafka": {"bootstrap": settings.kafka.bootstrap, "session_timeout_s": 60},
        "elasticsearch": {"url": settings.elasticsearch.url},
        "topic_prefix": settings.topic_prefix, "index_prefix": settings.index_prefix,
        "indexer": {"batch_max_wait_s": 0.2, "families": ["playback"]},
    }))
    dead = indexer_process(cfg_file, tmp_path / "dead.log")
    try:
        produce(settings, topics.PLAYBACK_EVENTS, events("a", 200), key=lambda r: r["session_id"].encode())
        wait_for(lambda: count(es, f"{settings.index_prefix}playscope-playback-*") == 200, 90, "first records")
        wait_for(lambda: committed_equals_end(settings, topics.PLAYBACK_EVENTS), 30, "first records committed")
    finally:
        dead.kill()
        dead.wait(10)
    produce(settings, topics.PLAYBACK_EVENTS, events("b", 300), key=lambda r: r["session_id"].encode())
    other = settings.model_copy(update={"kafka": settings.kafka.model_copy(
        update={"instance_id": "another-member", "session_timeout_s": 60})})
    with running_indexer(other, config(families=["playback"], lag_interval_s=0.5)) as indexer:
        def backlog_shown_while_holding_nothing() -> bool:
            assert not indexer._assigned, "the dead member's partitions moved before its session ended"
            return lag(indexer, "playback") == 300

        wait_for(backlog_shown_while_holding_nothing, 30, "lag 300 while holding no partitions")

