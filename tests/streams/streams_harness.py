"""Helpers for tests through real Kafka: a config file, worker processes, produce and read."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from playscope import topics
from playscope.config import Settings
from playscope.kafka import consumer_config, producer_config

REPO = Path(__file__).resolve().parents[2]


def write_config(settings: Settings, directory: Path, window_s: int = 2, lateness_s: int = 1, **streams: Any) -> Path:
    tree = settings.model_dump(mode="json", exclude={"source_file"})
    tree.update(window_s=window_s, allowed_lateness_s=lateness_s, home=str(directory / "home"))
    # Most scenarios are dated 2026-01-01: replayed history, a backfill, so the age bound is raised.
    tree["max_ts_age_s"] = 10 * 365 * 86400
    tree["streams"] = {"tick_interval_s": 0.5, "batch_wait_s": 0.05, **streams}
    path = directory / "playscope.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


class Worker:
    """One ``playscope streams`` process."""

    def __init__(self, config: Path, log: Path, log_level: str = "WARNING") -> None:
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 - closed in stop()/kill()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYSCOPE")}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "playscope.cli",
                "streams",
                "--config",
                str(config),
                "--metrics-port",
                "0",
                "--log-level",
                log_level,
            ],
            cwd=REPO,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._out.close()
        return code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._out.close()


def produce(settings: Settings, topic: str, records: Iterable[dict[str, Any]], key_field: str = "session_id") -> int:
    producer = Producer(producer_config(settings.kafka))
    n = 0
    for record in records:
        key = record.get(key_field)
        producer.produce(settings.topic(topic), value=orjson.dumps(record), key=None if key is None else str(key))
        n += 1
        if n % 10000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    return n


def produce_raw(settings: Settings, topic: str, values: Iterable[bytes]) -> None:
    producer = Producer(producer_config(settings.kafka))
    for value in values:
        producer.produce(settings.topic(topic), value=value)
    assert producer.flush(30) == 0


class Reader:
    """Reads a topic from the beginning (committed records only) and keeps everything read."""

    def __init__(self, settings: Settings, topic: str) -> None:
        name = settings.topic(topic)
        self.consumer = Consumer(
            consumer_config(settings.kafka, f"{name}.reader.{time.time_ns()}", **{"isolation.level": "read_committed"})
        )
        meta = self.consumer.list_topics(name, timeout=10).topics[name]
        self.consumer.assign([TopicPartition(name, p, 0) for p in meta.partitions])
        self.records: list[dict[str, Any]] = []

    def read_until(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 60, settle: float = 0.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(self.records):
            for msg in self.consumer.consume(1000, 0.5):
                if msg.error() is None:
                    self.records.append(orjson.loads(msg.value()))
        end = time.monotonic() + settle
        while time.monotonic() < end:
            for msg in self.consumer.consume(1000, 0.2):
                if msg.error() is None:
                    self.records.append(orjson.loads(msg.value()))
        return self.records

    def poll(self, timeout: float = 0.1) -> list[dict[str, Any]]:
        """Read what is there now (waiting at most ``timeout``); everything read so far."""
        for msg in self.consumer.consume(1000, timeout):
            if msg.error() is None:
                self.records.append(orjson.loads(msg.value()))
        return self.records

    def close(self) -> None:
        self.consumer.close()


def metrics_port(log: Path, timeout: float = 30) -> int:
    """The /metrics port a worker logged (``metrics.serving``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r'"metrics.serving".*?"port":(\d+)', log.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        time.sleep(0.2)
    raise AssertionError(f"no metrics port in {log}")


def metric(port: int, name: str) -> float:
    """One sample of a worker's /metrics (``name`` with its labels as exposed); NaN if absent."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else float("nan")


SESSIONS = topics.QOE_SESSIONS
QOE_METRICS = topics.QOE_METRICS
SERVICE_METRICS = topics.SERVICE_METRICS
