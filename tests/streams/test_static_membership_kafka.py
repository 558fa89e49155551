"""A worker killed with SIGKILL and started again with the same command takes its partitions
back at once (static group membership), instead of waiting out the dead member's session.

The session timeout is set to 45 s here, so a worker without static membership could not get
its partitions back in under 45 s: the bound asserted (30 s, generous for this shared
machine) fails without it. The figure measured goes to streams/README.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for
from streams_harness import SESSIONS, Reader, Worker, metric, metrics_port, produce, write_config

from playscope import topics
from playscope.config import Settings

pytestmark = pytest.mark.timeout(240)
SESSION_TIMEOUT_S = 45.0


def sessions(prefix: str, n: int) -> list[dict[str, Any]]:
    """``n`` short complete sessions (start, playing, end) stamped now."""
    now = int(time.time() * 1000)
    events = []
    for i in range(n):
        sid = f"{prefix}-{i}"
        for k, kind in enumerate(["session_start", "playing", "session_end"]):
            events.append({"event_id": f"{sid}-{k}", "session_id": sid, "ts": now + k * 100, "type": kind})
    return events


def summaries_of(reader: Reader, prefix: str) -> set[str]:
    return {r["session_id"] for r in reader.records if r["session_id"].startswith(prefix)}


def test_a_killed_worker_restarted_takes_its_partitions_back_at_once(settings: Settings, tmp_path: Path) -> None:
    slow_sessions = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"session_timeout_s": SESSION_TIMEOUT_S})})
    config = write_config(slow_sessions, tmp_path, window_s=2, lateness_s=1, idle_timeout_s=30)
    reader = Reader(settings, SESSIONS)
    worker = Worker(config, tmp_path / "first.log", log_level="INFO")
    try:
        produce(settings, topics.PLAYBACK_EVENTS, sessions("a", 30))
        reader.read_until(lambda r: len(summaries_of(reader, "a")) >= 30, timeout=120)
        worker.kill()
        restarted = time.monotonic()
        worker = Worker(config, tmp_path / "second.log", log_level="INFO")
        produce(settings, topics.PLAYBACK_EVENTS, sessions("b", 30))
        reader.read_until(lambda r: len(summaries_of(reader, "b")) >= 30, timeout=120)
        recovered_s = time.monotonic() - restarted
    finally:
        code = worker.stop()
        reader.close()
    print(f"restarted worker summarised new sessions {recovered_s:.1f} s after it was started")
    assert code == 0
    assert summaries_of(reader, "b") == {f"b-{i}" for i in range(30)}
    log = (tmp_path / "second.log").read_text(errors="replace")
    assert '"member":"' in log, "the worker did not log its static member id"
    assert recovered_s < 30, f"{recovered_s:.0f} s: the partitions waited for the dead member's session"


def test_lag_counts_partitions_nobody_holds(settings: Settings, tmp_path: Path) -> None:
    """A killed static member keeps its partitions until its session ends (60 s here): a worker
    with another member id joining meanwhile holds nothing, yet its lag gauge shows the backlog."""
    long_sessions = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"session_timeout_s": 60})})
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    first = Worker(write_config(long_sessions, first_dir, idle_timeout_s=30), tmp_path / "first.log")
    reader = Reader(settings, SESSIONS)
    try:
        produce(settings, topics.PLAYBACK_EVENTS, sessions("a", 10))
        reader.read_until(lambda r: len(summaries_of(reader, "a")) >= 10, timeout=120)
    finally:
        first.kill()
        reader.close()
    produce(settings, topics.PLAYBACK_EVENTS, sessions("b", 100))  # 300 events nobody reads
    other = long_sessions.model_copy(update={"kafka": long_sessions.kafka.model_copy(update={"instance_id": "other"})})
    log = tmp_path / "second.log"
    second = Worker(write_config(other, second_dir, idle_timeout_s=30), log, log_level="INFO")
    lag = f'playscope_streams_consumer_lag{{topic="{settings.topic(topics.PLAYBACK_EVENTS)}"}}'
    try:
        port = metrics_port(log)
        wait_for(lambda: metric(port, lag) >= 300, 45, "the backlog in the lag gauge")
        held = metric(port, 'playscope_streams_received_events_total{stream="qoe"}')
    finally:
        second.stop()
    assert not held > 0, "the second worker got partitions while the dead member's session was still on"
