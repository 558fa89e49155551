"""Broker outages on a private broker: 503 (or spool and replay), and nothing acknowledged lost."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from collector_helpers import RECENT_TS, read_topic
from helpers import running_collector

from playscope import topics
from playscope.config import Settings, load_settings
from playscope.provision import ensure_topics

pytestmark = pytest.mark.slow
TS = RECENT_TS


def _private_settings(server: Any) -> Settings:
    base = load_settings(environ={})
    tag = f"t{uuid.uuid4().hex[:8]}-outage."
    settings = base.model_copy(update={
        "kafka": base.kafka.model_copy(update={"bootstrap": server.bootstrap}), "topic_prefix": tag})
    ensure_topics(settings, partitions=3)
    return settings


def _batch(start: int, count: int) -> list[dict]:
    return [{"event_id": f"e{i}", "session_id": "s1", "ts": TS + i, "type": "heartbeat"}
            for i in range(start, start + count)]


def _wait_ready(url: str, want: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/readyz", timeout=10).status_code == want:
            return
        time.sleep(0.3)
    raise AssertionError(f"/readyz never answered {want}")


def test_broker_down_answers_503_and_retry_after_restart_loses_nothing(
    private_kafka: Callable[[], Any],
) -> None:
    server = private_kafka()
    settings = _private_settings(server)
    with running_collector(settings, produce_timeout_s=3, retry_after_s=2) as url:
        first = httpx.post(f"{url}/v1/events", json=_batch(0, 20), timeout=30)
        assert first.status_code == 202
        server.stop()
        _wait_ready(url, 503)
        refused = httpx.post(f"{url}/v1/events", json=_batch(20, 20), timeout=30)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
        server.start()
        server.wait_healthy(timeout_s=90)
        _wait_ready(url, 200)
        retried = httpx.post(f"{url}/v1/events", json=_batch(20, 20), timeout=30)
        assert retried.status_code == 202
    events = read_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 40)
    assert sorted({e["event_id"] for e in events}) == sorted(f"e{i}" for i in range(40))


def test_spool_accepts_while_down_and_replays_in_order(
    private_kafka: Callable[[], Any], tmp_path: Path
) -> None:
    server = private_kafka()
    settings = _private_settings(server)
    spool = tmp_path / "spool"
    with running_collector(settings, produce_timeout_s=3, spool_dir=str(spool)) as url:
        assert httpx.post(f"{url}/v1/events", json=_batch(0, 10), timeout=30).status_code == 202
        server.stop()
        time.sleep(1)
        for start in range(10, 40, 10):  # accepted while Kafka is down: spooled durably
            assert httpx.post(f"{url}/v1/events", json=_batch(start, 10), timeout=30).status_code == 202
        assert any(spool.iterdir())
        server.start()
        server.wait_healthy(timeout_s=90)
        assert httpx.post(f"{url}/v1/events", json=_batch(40, 10), timeout=30).status_code == 202
        deadline = time.monotonic() + 60
        while any(spool.glob("spool-*")) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(spool.glob("spool-*"))
    events = read_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 50)
    ids = [e["event_id"] for e in events]  # one key, one partition: Kafka order is accept order
    assert ids == [f"e{i}" for i in range(50)]
