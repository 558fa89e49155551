"""The broker killed with SIGKILL under steady input for ~20 s, then restarted: the indexer
rides it out without a restart of its own.

Every record produced is indexed once (the count equals the unique ids produced), the process
never exits, the broker_up gauge goes to 0 and back to 1 with one ``kafka.broker_down`` and one
``kafka.broker_up`` line, and the lag gauge reads 0 once everything is committed. A broker of
the test's own (``private_kafka``) and the shared Elasticsearch (per-test index prefix).

A second indexer (another group, in this process) is started while the broker is down, as on a
machine whose broker is still coming up: it waits, then indexes everything too (same ids, so
the count does not change).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from confluent_kafka import Producer

from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config
from playscope.provision import ensure_topics

from .helpers import (
    committed_equals_end,
    count,
    indexer_process,
    log_events,
    metric,
    metrics_port,
    running_indexer,
    wait_for,
)
from .helpers import config as indexer_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
# How long the broker stays down (PLAYSCOPE_TEST_OUTAGE_S=60 for the 60-s figure in the README).
OUTAGE_S = float(os.environ.get("PLAYSCOPE_TEST_OUTAGE_S", "20"))
BROKER_UP = "playscope_indexer_broker_up"
LAG = 'playscope_indexer_consumer_lag{family="playback"}'


class Feeder(threading.Thread):
    """20 playback events every 0.1 s until stopped; what the producer cannot deliver during the
    outage it holds and sends once the broker is back."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.topic = settings.topic(topics.PLAYBACK_EVENTS)
        self.producer = Producer(producer_config(settings.kafka, **{"reconnect.backoff.max.ms": 1000}))
        self.sent = 0
        self.failures: list[str] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.1):
            now = int(time.time() * 1000)
            for _ in range(20):
                record = {"event_id": f"e{self.sent}", "session_id": f"s{self.sent % 40}", "ts": now,
                          "type": "heartbeat"}
                self.producer.produce(self.topic, orjson.dumps(record), key=record["session_id"],
                                      on_delivery=self._delivered)
                self.sent += 1
            self.producer.poll(0)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failures.append(str(err))

    def finish(self) -> int:
        self.stop_event.set()
        self.join(10)
        return self.producer.flush(120)


class Sampler(threading.Thread):
    """The broker_up gauge every 0.3 s (values in order, repeats dropped)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.seen: list[float] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.3):
            try:
                value = metric(self.port, BROKER_UP)
            except Exception:  # a failed scrape says nothing about the broker
                continue
            if not self.seen or self.seen[-1] != value:
                self.seen.append(value)


def test_indexer_rides_out_a_broker_restart(private_kafka: Any, settings: Settings, es: Any, tmp_path: Path) -> None:
    broker = private_kafka()
    mine = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"bootstrap": broker.bootstrap})})
    ensure_topics(mine, partitions=3)
    config = tmp_path / "playscope.yaml"
    config.write_text(yaml.safe_dump({
        "kafka": {"bootstrap": broker.bootstrap},
        "elasticsearch": {"url": settings.elasticsearch.url},
        "topic_prefix": settings.topic_prefix,
        "index_prefix": settings.index_prefix,
        "indexer": {"batch_max_wait_s": 0.2, "families": ["playback"], "lag_interval_s": 1},
    }))
    pattern = f"{settings.index_prefix}playscope-playback-*"
    log = tmp_path / "indexer.log"
    proc = indexer_process(config, log)
    feeder = Feeder(mine)
    late_group = mine.group("indexer-late")
    stack = contextlib.ExitStack()
    try:
        port = metrics_port(log)
        sampler = Sampler(port)
        sampler.start()
        feeder.start()
        wait_for(lambda: count(es, pattern) > 1000, 90, "the first records indexed")
        broker.kill()
        late = stack.enter_context(running_indexer(mine, indexer_config(families=["playback"]),
                                                   consumer_overrides={"group.id": late_group}))
        time.sleep(OUTAGE_S)  # the outage (not a timing assertion): the feeder keeps producing meanwhile
        assert late.broker.up is False, "the indexer started during the outage did not see the broker down"
        assert proc.poll() is None, "the indexer exited during the outage"
        broker.start()
        broker.wait_healthy(timeout_s=120)
        back = time.monotonic()
        before = count(es, pattern)
        wait_for(lambda: count(es, pattern) > before, 60, "indexing to resume")
        resumed_s = time.monotonic() - back
        time.sleep(3)
        assert feeder.finish() == 0 and not feeder.failures, feeder.failures[:3]
        wait_for(lambda: count(es, pattern) >= feeder.sent, 60, "every record indexed")
        wait_for(lambda: committed_equals_end(mine, topics.PLAYBACK_EVENTS), 60, "everything committed")
        wait_for(lambda: committed_equals_end(mine, topics.PLAYBACK_EVENTS, late_group), 60,
                 "the indexer started during the outage committed everything")
        stack.close()
        wait_for(lambda: metric(port, LAG) == 0.0, 30, "consumer lag 0")
        wait_for(lambda: sampler.seen[-1:] == [1.0], 30, "broker_up back to 1")
        sampler.stop_event.set()
        print(f"indexing resumed {resumed_s:.1f} s after the broker was back; {feeder.sent} records; "
              f"broker_up samples {sampler.seen}")
        assert proc.poll() is None, "the indexer exited"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        stack.close()
    assert count(es, pattern) == feeder.sent
    assert sampler.seen[:1] == [1.0] and 0.0 in sampler.seen and sampler.seen[-1] == 1.0, sampler.seen
    assert log_events(log, "kafka.broker_down") == 1, "broker_down logged more than once"
    assert log_events(log, "kafka.broker_up") == 1, "broker_up logged more than once"
    assert resumed_s < 30
