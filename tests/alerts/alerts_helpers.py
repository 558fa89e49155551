"""Helpers for the alert tests: real local HTTP receivers, real Kafka, no mocks."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from helpers import wait_for

from alerts.config import AlertsConfig
from alerts.loader import load_rules
from alerts.service import AlertService
from playscope import topics
from playscope.config import Settings
from playscope.kafka import consumer_config, producer_config
from playscope.stack.ports import free_port

W = 60_000
T0 = (int(time.time() * 1000) - 3600_000) // W * W


class Receiver:
    """An HTTP server that records every JSON POST; it can be stopped and started on its port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "raw": body, "json": json.loads(body)})  # fmt: skip
                answer = b"ok"
                self.send_response(200)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r["json"] for r in self.requests if path is None or r["path"] == path]


def qoe_window(i: int, cdn: str, ratio: float, attempts: int = 50, **extra: Any) -> dict[str, Any]:
    start = T0 + i * W
    return {"window_start": start, "window_end": start + W, "group": "cdn", "cdn": cdn,
            "attempts": attempts, "rebuffer_ratio": ratio, "failure_rate": 0.0, **extra}  # fmt: skip


def produce(settings: Settings, topic: str, records: list[dict[str, Any] | bytes]) -> None:
    """Write window records the way the streams do (key window+group)."""
    producer = Producer(producer_config(settings.kafka))
    for record in records:
        if isinstance(record, bytes):
            producer.produce(settings.topic(topic), value=record)
            continue
        key = f"{record['window_start']}|{record['group']}|{record.get('cdn', record.get('service', ''))}"
        producer.produce(settings.topic(topic), key=key.encode(), value=orjson.dumps(record))
    assert producer.flush(30) == 0


def read_topic(settings: Settings, topic: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """Every committed record of a topic, from the beginning."""
    name = settings.topic(topic)
    consumer = Consumer(consumer_config(settings.kafka, f"{name}.reader.{time.time_ns()}",
                                        **{"isolation.level": "read_committed"}))  # fmt: skip
    try:
        parts = consumer.list_topics(name, timeout=10).topics[name].partitions
        consumer.assign([TopicPartition(name, p, 0) for p in parts])
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        ends = {p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1] for p in parts}
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                if not msg.error() and msg.value():
                    out.append(orjson.loads(msg.value()))
            pos = consumer.position([TopicPartition(name, p) for p in parts])
            if all(tp.offset >= ends[tp.partition] or ends[tp.partition] == 0 for tp in pos):
                break
        return out
    finally:
        consumer.close()


@contextmanager
def running_service(settings: Settings, rules: Path, **cfg: Any) -> Iterator[AlertService]:
    """An evaluator running in a thread of this process; stopped cleanly at the end."""
    config = AlertsConfig(**{"retry_initial_s": 0.2, "retry_max_s": 1.0, "tick_interval_s": 0.2, **cfg})
    service = AlertService(settings, load_rules(rules), config)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(service.run())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    wait_for(lambda: service.ready.is_set() or errors, 60, "the evaluator to start")
    if errors:
        raise errors[0]
    try:
        yield service
    finally:
        service.stop()
        thread.join(30)
        assert not thread.is_alive(), "evaluator did not stop"
        if errors:
            raise errors[0]


def write_rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


QOE = topics.QOE_METRICS
SERVICE = topics.SERVICE_METRICS
