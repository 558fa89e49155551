"""Helpers for collector tests: a real collector on a free port, and a real Kafka reader."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from confluent_kafka import Consumer, TopicPartition

from collectors.http.app import create_app
from collectors.http.config import CollectorConfig
from playscope.config import Settings
from playscope.kafka import consumer_config

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "cmcd"
if not SAMPLES.is_dir():
    SAMPLES = Path("/work/shared/samples/cmcd")
NOW = 1_795_307_700_000


def tsv_rows(name: str) -> list[tuple[str, str, str]]:
    rows = []
    for line in (SAMPLES / name).read_text().splitlines():
        if line.strip():
            player, path, value = line.split("\t")
            rows.append((player, path, value))
    return rows


def ndjson_rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLES / name).read_text().splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_collector(settings: Settings, **overrides: Any) -> Iterator[str]:
    """Serve the collector with uvicorn in a thread; yields its base URL."""
    config = CollectorConfig(**{"host": "127.0.0.1", "port": free_port(), **overrides})
    app = create_app(settings, config)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=config.host, port=config.port, log_config=None, access_log=False, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("collector did not start")
        time.sleep(0.05)
    try:
        yield f"http://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def read_topic(
    settings: Settings, topic: str, expected: int, timeout_s: float = 20.0, settle_s: float = 1.0
) -> list[dict[str, Any]]:
    """Read a topic from the beginning until ``expected`` records (then a little longer, so
    extra records are seen too) or the timeout; returns the decoded values with their keys."""
    consumer = Consumer(consumer_config(settings.kafka, f"test-{uuid.uuid4().hex[:8]}"))
    meta = consumer.list_topics(topic, timeout=10)
    parts = [TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions]
    consumer.assign(parts)
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if settle_until is None and len(out) >= expected:
                settle_until = time.monotonic() + settle_s
            if settle_until is not None and time.monotonic() > settle_until:
                break
            for msg in consumer.consume(1000, timeout=0.2):
                if msg.error():
                    continue
                value = orjson.loads(msg.value())
                value["_key"] = msg.key().decode() if msg.key() else None
                out.append(value)
    finally:
        consumer.close()
    return out
