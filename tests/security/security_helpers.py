"""Helpers for the security tests: a real collector on a free port (plain or HTTPS), raw topic
reads, and certificates from a throw-away CA."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import uvicorn
from confluent_kafka import Consumer, TopicPartition

from collectors.http.app import create_app
from collectors.http.cli import ssl_options
from collectors.http.config import CollectorConfig
from playscope.config import Settings
from playscope.kafka import consumer_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_collector(settings: Settings, **overrides: Any) -> Iterator[str]:
    """Serve the collector with uvicorn in a thread (HTTPS when ``tls`` is configured)."""
    config = CollectorConfig(**{"host": "127.0.0.1", "port": free_port(), **overrides})
    app = create_app(settings, config)
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_config=None,
                                          access_log=False, lifespan="on", **ssl_options(config)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("collector did not start")
        time.sleep(0.05)
    scheme = "https" if config.tls is not None else "http"
    try:
        yield f"{scheme}://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def read_raw_topic(settings: Settings, topic: str, expected: int, timeout_s: float = 20.0) -> list[bytes]:
    """The raw values of a topic, read from the beginning until ``expected`` (plus a second)."""
    consumer = Consumer(consumer_config(settings.kafka, f"test-{uuid.uuid4().hex[:8]}"))
    meta = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions])
    out: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    settle: float | None = None
    try:
        while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
            for msg in consumer.consume(1000, timeout=0.2):
                if not msg.error():
                    out.append(msg.value())
            if settle is None and len(out) >= expected:
                settle = time.monotonic() + 1.0
    finally:
        consumer.close()
    return out
