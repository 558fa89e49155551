"""Two workers share the partitions; every record is processed once."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from streams_harness import QOE_METRICS, SESSIONS, Reader, Worker, metrics_port, produce, write_config
from test_restart_kafka import N_SESSIONS, window_key, workload

from playscope import topics
from playscope.config import Settings

pytestmark = pytest.mark.timeout(300)


def wait_for_split(settings: Settings, workers: int, timeout: float = 90) -> None:
    """Until the group is stable with every worker owning some event partitions."""
    from confluent_kafka.admin import AdminClient

    from playscope.kafka import admin_config

    admin = AdminClient(admin_config(settings.kafka))
    group = settings.group("streams")
    events = settings.topic(topics.PLAYBACK_EVENTS)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = admin.describe_consumer_groups([group])[group].result()
        owners = [m for m in desc.members if any(tp.topic == events for tp in m.assignment.topic_partitions)]
        if str(desc.state).endswith("STABLE") and len(owners) == workers:
            return
        time.sleep(1)
    raise AssertionError("the workers did not split the partitions")


def received(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.search(r'^playscope_streams_received_events_total\{stream="qoe"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_two_workers_share_partitions(settings: Settings, tmp_path: Path) -> None:
    config = write_config(settings, tmp_path, window_s=2, lateness_s=1, idle_timeout_s=10)
    workers = [Worker(config, tmp_path / f"w{i}.log", log_level="INFO") for i in range(2)]
    try:
        ports = [metrics_port(w.log) for w in workers]
        wait_for_split(settings, 2)
        time.sleep(3)  # let both finish recovering their tables
        events = workload(seed=9)
        produce(settings, topics.PLAYBACK_EVENTS, events)
        last_window = max(e["ts"] for e in events) // 2000 * 2000
        sessions = Reader(settings, SESSIONS).read_until(
            lambda r: len({x["session_id"] for x in r}) >= N_SESSIONS, timeout=120
        )
        windows = Reader(settings, QOE_METRICS).read_until(
            lambda r: any(x["window_start"] == last_window and x["group"] == "total" for x in r), 120, settle=2
        )
        counts = [received(p) for p in ports]
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0]
    assert all(c > 0 for c in counts), counts  # both workers did part of the work
    assert sum(counts) == len(events), counts  # and no record was processed twice
    assert len(sessions) == N_SESSIONS
    totals: dict[tuple, dict] = {}
    for w in windows:
        assert totals.setdefault(window_key(w), w) == w
    assert sum(w["attempts"] for k, w in totals.items() if k[1] == "total") == N_SESSIONS
