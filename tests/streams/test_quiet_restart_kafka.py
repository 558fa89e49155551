"""A worker restarted after the stream went quiet still closes the sessions left open.

The first worker consumes everything, then is stopped before the open sessions' idle timeout has
passed. The second reads nothing new: only its wall-time ticks can move the partitions' clocks,
and they must, from the state it restored, so the idle sessions close and are summarised.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from streams_harness import SESSIONS, Reader, Worker, produce, write_config

from playscope import topics
from playscope.config import Settings

T0 = 1_767_225_600_000
OPEN = 24
IDLE_S = 12
pytestmark = pytest.mark.timeout(300)


def workload() -> list[dict[str, Any]]:
    """``OPEN`` sessions that stop sending near the end, and one that ends before them (the
    sign that the first worker processed the whole stream)."""
    events: list[dict[str, Any]] = []
    last = T0 + 60_000
    for i in range(OPEN):
        sid = f"q-{i}"
        for k, ts in enumerate(range(T0 + i * 100, last + i * 10, 5_000)):
            kind = "session_start" if k == 0 else "playing" if k == 1 else "heartbeat"
            events.append({"event_id": f"{sid}-{k}", "session_id": sid, "ts": ts, "type": kind, "cdn": "a"})
    canary = [("session_start", T0), ("playing", T0 + 1_000), ("session_end", last - 3_000)]
    for k, (kind, ts) in enumerate(canary):
        events.append({"event_id": f"canary-{k}", "session_id": "canary", "ts": ts, "type": kind})
    events.sort(key=lambda e: e["ts"])
    return events


def test_restart_after_the_stream_went_quiet_closes_idle_sessions(settings: Settings, tmp_path: Path) -> None:
    config = write_config(settings, tmp_path, window_s=10, lateness_s=1, idle_timeout_s=IDLE_S)
    produce(settings, topics.PLAYBACK_EVENTS, workload())
    sessions = Reader(settings, SESSIONS)
    first = Worker(config, tmp_path / "first.log")
    try:
        sessions.read_until(lambda r: any(s["session_id"] == "canary" for s in r), timeout=120)
        time.sleep(1)
    finally:
        assert first.stop() == 0
    started = time.monotonic()
    assert [s["session_id"] for s in sessions.records] == ["canary"], "the first worker closed more than expected"

    second = Worker(config, tmp_path / "second.log")
    try:
        sessions.read_until(lambda r: len({s["session_id"] for s in r}) >= OPEN + 1, timeout=150, settle=2)
    finally:
        assert second.stop() == 0
    summaries = [s for s in sessions.records if s["session_id"] != "canary"]
    assert sorted(s["session_id"] for s in summaries) == sorted(f"q-{i}" for i in range(OPEN)), (
        f"{len(summaries)} of {OPEN} idle sessions closed {time.monotonic() - started:.0f}s after the restart")
    assert all(s["closed_by"] == "idle" for s in summaries), {s["closed_by"] for s in summaries}
    sessions.close()
