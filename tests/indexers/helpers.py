"""Helpers shared by the indexer tests: produce to the test's topics, run an indexer (in a
thread, or as a ``playscope indexer`` process), read its /metrics, wait."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from helpers import wait_for as shared_wait_for

from indexers.config import IndexerConfig
from indexers.indexer import Indexer
from indexers.metrics import IndexerMetrics
from playscope.config import Settings
from playscope.kafka import consumer_config, producer_config

FAST = {"batch_max_wait_s": 0.2, "retry_initial_s": 0.1, "retry_max_s": 1.0, "shutdown_timeout_s": 20}


def produce(settings: Settings, topic: str, records: Iterable[bytes | dict[str, Any]],
            key: Callable[[Any], bytes | None] | None = None) -> int:
    """Produce ``records`` (dicts are JSON-encoded) to SPEC topic ``topic``; wait for every ack."""
    producer = Producer(producer_config(settings.kafka))
    failures: list[str] = []
    count = 0
    for rec in records:
        value = rec if isinstance(rec, bytes) else orjson.dumps(rec)
        producer.produce(settings.topic(topic), value=value, key=key(rec) if key else None,
                         on_delivery=lambda err, _m: failures.append(str(err)) if err else None)
        producer.poll(0)
        count += 1
    assert producer.flush(30) == 0
    assert not failures, failures
    return count


def config(**overrides: Any) -> IndexerConfig:
    return IndexerConfig(**{**FAST, **overrides})


@contextmanager
def running_indexer(settings: Settings, cfg: IndexerConfig | None = None,
                    **kwargs: Any) -> Iterator[Indexer]:
    """An indexer in a background thread, stopped (flushed, committed) on exit."""
    indexer = Indexer(settings, cfg or config(), metrics=IndexerMetrics(), **kwargs)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(indexer.run()), daemon=True)
    thread.start()
    try:
        yield indexer
    finally:
        indexer.stop()
        thread.join(60)
        assert not thread.is_alive(), "indexer did not stop within 60 s"
    assert result == [0]


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60, what: str = "condition") -> None:
    """:func:`helpers.wait_for`, polling less often: these conditions query the clusters."""
    shared_wait_for(predicate, timeout_s, what, interval_s=0.2)


def count(client: Any, pattern: str) -> int:
    """Documents in ``pattern`` after a refresh (0 when no index matches yet, or when an index
    created a moment ago has no started shard yet: the cluster answers 503 until it has)."""
    try:
        client.indices.refresh(index=pattern, ignore_unavailable=True, allow_no_indices=True)
        resp = client.count(index=pattern, ignore_unavailable=True, allow_no_indices=True)
    except Exception as exc:
        status = getattr(getattr(exc, "meta", None), "status", None) or getattr(exc, "status_code", None)
        if status == 503:
            return 0
        raise
    return int(resp["count"])


def committed_equals_end(settings: Settings, topic: str, group: str | None = None) -> bool:
    """True when the indexer group's committed offsets reach the end of every partition."""
    consumer = Consumer(consumer_config(settings.kafka, group or settings.group("indexer")))
    try:
        name = settings.topic(topic)
        meta = consumer.list_topics(name, timeout=10)
        parts = [TopicPartition(name, p) for p in meta.topics[name].partitions]
        committed = consumer.committed(parts, timeout=10)
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(TopicPartition(name, tp.partition), timeout=10)
            if high > 0 and tp.offset != high:
                return False
        return True
    finally:
        consumer.close()


def indexer_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``playscope indexer`` with ``config``, its stderr (the JSON log) appended to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "playscope.cli", "indexer", "--config", str(config), "--metrics-port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        cwd=config.parent,
    )


def metrics_port(log: Path, after: int = 0) -> int:
    """The /metrics port the process logged (``metrics.serving``) after byte ``after`` of its log."""
    def found() -> list[bytes]:
        return re.findall(rb'"metrics.serving".*?"port":(\d+)', log.read_bytes()[after:])

    wait_for(lambda: bool(found()), 30, "the metrics endpoint")
    return int(found()[-1])


def metric(port: int, name: str) -> float:
    """One sample of the process's /metrics (``name`` with its labels as exposed); NaN if absent."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else float("nan")


def log_events(log: Path, event: str) -> int:
    """How many lines of the JSON log ``log`` carry ``event``."""
    return log.read_bytes().count(f'"event":"{event}"'.encode())
