"""Helpers shared by the test folders: waiting for a condition, a real collector on a free port
(plain or HTTPS), and reading a topic from the beginning. Imported as ``helpers`` (tests/ is on
the import path through tests/conftest.py); the folders' own helper modules build on these."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from confluent_kafka import Consumer, Message, TopicPartition

from collectors.http.app import create_app
from collectors.http.cli import ssl_options
from collectors.http.config import CollectorConfig
from playscope.config import Settings
from playscope.kafka import consumer_config
from playscope.stack.ports import free_port


def wait_for(predicate: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition",
             interval_s: float = 0.05) -> Any:
    """Call ``predicate`` every ``interval_s`` until it returns something true, and return that;
    AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@contextlib.contextmanager
def running_collector(settings: Settings, **overrides: Any) -> Iterator[str]:
    """Serve the collector with uvicorn in a thread (HTTPS when ``tls`` is configured); yields its base URL."""
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


def read_messages(settings: Settings, topic: str, expected: int, timeout_s: float = 20.0,
                  settle_s: float = 1.0) -> list[Message]:
    """The messages of ``topic`` (its full name), read from the beginning until ``expected`` of them
    (then ``settle_s`` longer, so that extra ones are seen too) or the timeout; error events left out."""
    consumer = Consumer(consumer_config(settings.kafka, f"test-{uuid.uuid4().hex[:8]}"))
    meta = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions])
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline and (settle_until is None or time.monotonic() < settle_until):
            out += [msg for msg in consumer.consume(1000, timeout=0.2) if not msg.error()]
            if settle_until is None and len(out) >= expected:
                settle_until = time.monotonic() + settle_s
    finally:
        consumer.close()
    return out
