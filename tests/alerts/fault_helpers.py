"""Helpers of the evaluator's fault tests: the evaluator as a child process, a steady
transactional feed of windows (as the streams write them), a rule and webhook counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from alerts_helpers import QOE, Receiver, qoe_window, wait_for
from confluent_kafka import KafkaException, Producer

from playscope.config import Settings
from playscope.kafka import producer_config

RULES = """
channels:
  oncall: {{type: webhook, url: "{url}/hook"}}
rules:
  - name: cdn-rebuffering
    source: qoe
    metric: rebuffer_ratio
    group_by: [cdn]
    op: ">"
    threshold: 0.05
    for: 2
    notify: [oncall]
"""


class Evaluator:
    """``playscope alerts -r RULES`` as a child process, its log in a file."""

    def __init__(self, settings: Settings, rules: Path, tmp_path: Path, n: int = 1, **alerts: Any) -> None:
        config = tmp_path / f"playscope{n}.yaml"
        config.write_text(yaml.safe_dump({
            "kafka": {"bootstrap": settings.kafka.bootstrap},
            "topic_prefix": settings.topic_prefix,
            "alerts": {"metrics_port": 0, "retry_initial_s": 0.2, "retry_max_s": 1.0, "tick_interval_s": 0.2,
                       "absent_wall_fallback": False, **alerts},
        }))  # fmt: skip
        self.log = tmp_path / f"evaluator{n}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYSCOPE")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "playscope.cli", "alerts", "-r", str(rules), "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=self.log.open("wb"), env=env,
        )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_started(self, timeout_s: float = 60) -> None:
        wait_for(lambda: "alerts.started" in self.text() or self.proc.poll() is not None, timeout_s,
                 "evaluator start")  # fmt: skip
        assert self.proc.poll() is None, self.text()[-3000:]

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            if f'"{name}"' in line:
                try:
                    out.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
        return [e for e in out if e.get("event") == name]

    def metrics(self) -> str:
        serving = self.events("metrics.serving")
        assert serving, self.text()[-2000:]
        return httpx.get(f"http://127.0.0.1:{serving[0]['port']}/metrics", timeout=5).text

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class WindowFeed:
    """Closed windows written like the streams write them: small transactions, steadily.

    A healthy CDN ``b`` window every ``interval_s``, plus whatever ``put`` queues. During an
    outage a transaction fails; the feed then starts over with a fresh producer (which aborts
    the open transaction), and the records of the failed transaction are written again."""

    def __init__(self, settings: Settings, interval_s: float = 0.05) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.queued: list[dict[str, Any]] = []
        self.written = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._index = 0

    def start(self) -> WindowFeed:
        self._thread.start()
        return self

    def put(self, *records: dict[str, Any]) -> None:
        with self._lock:
            self.queued += records

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _producer(self) -> Producer:
        while not self._stop.is_set():
            producer = Producer(producer_config(self.settings.kafka, **{
                "transactional.id": f"{self.settings.topic_prefix}feed", "linger.ms": 0,
                "transaction.timeout.ms": 20_000, "message.timeout.ms": 10_000}))  # fmt: skip
            try:
                producer.init_transactions(10)
                return producer
            except KafkaException:
                time.sleep(0.5)
        raise RuntimeError("stopped")

    def _run(self) -> None:
        topic = self.settings.topic(QOE)
        producer = None
        while not self._stop.is_set():
            with self._lock:
                batch, self.queued = self.queued, []
            batch.append(qoe_window(self._index % 50, f"b{self._index // 50}", 0.0))
            try:
                if producer is None:
                    producer = self._producer()
                producer.begin_transaction()
                for record in batch:
                    key = f"{record['window_start']}|{record['group']}|{record['cdn']}"
                    producer.produce(topic, key=key.encode(), value=orjson.dumps(record))
                producer.commit_transaction(10)
                self.written += len(batch)
                self._index += 1
            except (KafkaException, RuntimeError):
                with self._lock:
                    self.queued = batch[:-1] + self.queued
                producer = None
            self._stop.wait(self.interval_s)


def hooks_by_status(receiver: Receiver) -> Counter[tuple[str, str]]:
    return Counter((h["group_key"], h["status"]) for h in receiver.bodies("/hook"))


