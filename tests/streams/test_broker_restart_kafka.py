"""The broker killed with SIGKILL under steady input for ~20 s, then restarted: the worker
rides it out without a restart of its own.

The worker is started before its topics exist (as on a fresh machine, where it failed with
"topic ... does not exist"): it waits for them. Every session produced is summarised, every
event is processed once (the received counter equals what was produced, no duplicate
discarded), none of the events held back by the producer during the outage is late (the
worker sent no wall-clock ticks while the broker was away), the broker_up gauge went to 0 and
back to 1, the log says so once each way, and the lag gauge reads 0 once everything is
committed. Uses a broker of its own (``private_kafka``), never the shared one.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from helpers import wait_for
from streams_harness import SESSIONS, Reader, Worker, metric, metrics_port, write_config

from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config
from playscope.provision import ensure_topics

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
# How long the broker stays down (PLAYSCOPE_TEST_OUTAGE_S=60 for the 60-s figure in the README).
OUTAGE_S = float(os.environ.get("PLAYSCOPE_TEST_OUTAGE_S", "20"))
RECEIVED = 'playscope_streams_received_events_total{stream="qoe"}'
BROKER_UP = "playscope_streams_broker_up"


class Feeder(threading.Thread):
    """Two short sessions (start, playing, end; ``ts`` = now) every 0.1 s until stopped; the
    producer holds what it cannot deliver (the outage) and sends it after the broker is back."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.topic = settings.topic(topics.PLAYBACK_EVENTS)
        # reconnect quickly once the broker is back, as the collector does within seconds
        self.producer = Producer(producer_config(settings.kafka, **{"reconnect.backoff.max.ms": 1000}))
        self.sessions: list[str] = []
        self.failures: list[str] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.1):
            for _ in range(2):
                sid = f"s{len(self.sessions)}"
                now = int(time.time() * 1000)
                for k, kind in enumerate(["session_start", "playing", "session_end"]):
                    value = orjson.dumps({"event_id": f"{sid}-{k}", "session_id": sid, "ts": now + 50 * k,
                                          "type": kind})
                    self.producer.produce(self.topic, value, key=sid, on_delivery=self._delivered)
                self.sessions.append(sid)
            self.producer.poll(0)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failures.append(str(err))

    def finish(self) -> int:
        self.stop_event.set()
        self.join(10)
        return self.producer.flush(120)


class Sampler(threading.Thread):
    """The broker_up gauge every 0.3 s (the values seen, in order, repeats dropped)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.seen: list[float] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.3):
            try:
                value = metric(self.port, BROKER_UP)
            except Exception:  # a scrape that failed says nothing about the broker
                continue
            if not self.seen or self.seen[-1] != value:
                self.seen.append(value)


def test_worker_rides_out_a_broker_restart(private_kafka: Any, settings: Settings, tmp_path: Path) -> None:
    broker = private_kafka()
    mine = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"bootstrap": broker.bootstrap})})
    config = write_config(mine, tmp_path, window_s=2, lateness_s=2, idle_timeout_s=30)
    log = tmp_path / "worker.log"
    t0 = time.monotonic()
    phases: dict[str, float] = {}
    worker = Worker(config, log, log_level="INFO")
    feeder = Feeder(mine)
    try:
        wait_for(lambda: '"kafka.waiting"' in log.read_text(errors="replace"), 60, "the worker to wait for its topics")
        ensure_topics(mine, partitions=3)
        port = metrics_port(log)
        sampler = Sampler(port)
        sampler.start()
        feeder.start()
        wait_for(lambda: metric(port, RECEIVED) > 300, 90, "the worker to process the first events")
        phases["first events processed"] = time.monotonic() - t0
        broker.kill()
        time.sleep(OUTAGE_S)  # the outage (not a timing assertion): the feeder keeps producing meanwhile
        assert worker.proc.poll() is None, "the worker exited during the outage"
        broker.start()
        broker.wait_healthy(timeout_s=120)
        back = time.monotonic()
        phases["broker back"] = back - t0
        before = metric(port, RECEIVED)
        wait_for(lambda: metric(port, RECEIVED) > before, 60, "processing to resume")
        resumed_s = time.monotonic() - back
        time.sleep(3)
        assert feeder.finish() == 0 and not feeder.failures, feeder.failures[:3]
        produced = 3 * len(feeder.sessions)
        phases["producer flushed"] = time.monotonic() - t0
        wait_for(lambda: metric(port, RECEIVED) >= produced, 60, "every event processed")
        phases["all processed"] = time.monotonic() - t0
        reader = Reader(mine, SESSIONS)
        summaries = reader.read_until(lambda r: len({s["session_id"] for s in r}) >= len(feeder.sessions), 60, settle=2)
        reader.close()
        phases["summaries read"] = time.monotonic() - t0
        lag = f'playscope_streams_consumer_lag{{topic="{mine.topic(topics.PLAYBACK_EVENTS)}"}}'
        wait_for(lambda: metric(port, lag) == 0.0, 30, "consumer lag 0")
        wait_for(lambda: sampler.seen[-1:] == [1.0], 30, "broker_up back to 1")
        sampler.stop_event.set()
        print(f"processing resumed {resumed_s:.1f} s after the broker was back; "
              f"{len(feeder.sessions)} sessions, broker_up samples {sampler.seen}, phases {phases}")
        assert worker.proc.poll() is None, "the worker exited"
        received = metric(port, RECEIVED)
        late = metric(port, 'playscope_streams_late_events_total{stream="qoe"}')
        duplicates = metric(port, 'playscope_streams_discarded_events_total{reason="duplicate"}')
    finally:
        code = worker.stop()
    assert code == 0
    assert received == produced, "an event was processed twice or not at all"
    assert duplicates == 0
    assert late == 0, "events held back during the outage arrived behind a clock moved on by ticks"
    by_session: dict[str, list[dict[str, Any]]] = {}
    for summary in summaries:
        by_session.setdefault(summary["session_id"], []).append(summary)
    assert set(by_session) == set(feeder.sessions)
    assert all(all(v == versions[0] for v in versions) for versions in by_session.values())
    assert sampler.seen[:1] == [1.0] and 0.0 in sampler.seen and sampler.seen[-1] == 1.0, sampler.seen
    text = log.read_text(errors="replace")
    assert text.count('"event":"kafka.broker_down"') == 1, "broker_down logged more than once"
    assert text.count('"event":"kafka.broker_up"') == 1, "broker_up logged more than once"
    assert resumed_s < 30
