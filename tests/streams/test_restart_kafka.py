"""SIGKILL a worker mid-stream, restart it: the results equal an uninterrupted run.

Once after a third of the sessions are out, and ten times at random moments (mid-batch, during
a restore, while outputs are in flight). Each run reads the same events from its own topics. A
run may re-send a record after the kill (at-least-once delivery), but never with different
content: no session lost or counted twice, no window emitted twice with different numbers.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
from streams_harness import QOE_METRICS, SESSIONS, Reader, Worker, produce, write_config

from playscope import topics
from playscope.config import Settings
from playscope.provision import ensure_topics

T0 = 1_767_225_600_000
N_SESSIONS = 150
pytestmark = pytest.mark.timeout(420)


def workload(seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events = []
    for i in range(N_SESSIONS):
        sid = f"r-{i}"
        t = T0 + rng.randint(0, 20_000)
        cdn = rng.choice(["a", "b", "c"])
        seq = [
            ("session_start", {"cdn": cdn, "country": rng.choice(["FR", "US"])}),
            ("playing", {"bitrate_kbps": 3000}),
        ]
        for _ in range(rng.randint(5, 25)):
            seq.append(
                (
                    rng.choice(
                        [
                            "heartbeat",
                            "rebuffer_start",
                            "rebuffer_end",
                            "pause",
                            "resume",
                            "seek",
                            "playing",
                            "bitrate_change",
                        ]
                    ),
                    {},
                )
            )
        seq.append((rng.choice(["session_end", "session_end", "error"]), {"fatal": True, "error_code": "X"}))
        for k, (kind, extra) in enumerate(seq):
            if kind == "bitrate_change":
                extra = {"to_kbps": rng.choice([1500, 3000, 6000])}
            if kind != "error":
                extra = {x: y for x, y in extra.items() if x not in ("fatal", "error_code")}
            events.append({"event_id": f"{sid}-{k}", "session_id": sid, "ts": t, "type": kind, **extra})
            t += rng.randint(100, 900)
    events.sort(key=lambda e: e["ts"])
    return events


def window_key(r: dict[str, Any]) -> tuple:
    return (r["window_start"], r["group"], r.get("cdn"), r.get("isp"), r.get("device"), r.get("country"))


def run(
    settings: Settings,
    directory: Path,
    events: list[dict[str, Any]],
    kill_after: int | None,
    kill_at_s: list[float] = (),  # type: ignore[assignment]
) -> tuple[dict, dict]:
    directory.mkdir()
    config = write_config(settings, directory, window_s=2, lateness_s=1, idle_timeout_s=10, batch_size=20)
    produce(settings, topics.PLAYBACK_EVENTS, events)
    last_window = max(e["ts"] for e in events) // 2000 * 2000
    sessions, windows = Reader(settings, SESSIONS), Reader(settings, QOE_METRICS)
    worker = Worker(config, directory / "worker.log")
    if kill_after is not None:
        sessions.read_until(lambda r: len(r) >= kill_after, timeout=120)
        worker.kill()
        time.sleep(1)
        worker = Worker(config, directory / "worker-restarted.log")
    for i, delay in enumerate(kill_at_s):
        time.sleep(delay)
        worker.kill()
        worker = Worker(config, directory / f"worker-{i}.log")
    try:
        sessions.read_until(lambda r: len({x["session_id"] for x in r}) >= N_SESSIONS, timeout=180)
        windows.read_until(
            lambda r: any(x["window_start"] == last_window and x["group"] == "total" for x in r), timeout=120, settle=3
        )
    finally:
        assert worker.stop() == 0
    by_session: dict[str, list] = {}
    for s in sessions.records:
        by_session.setdefault(s["session_id"], []).append(s)
    by_window: dict[tuple, list] = {}
    for w in windows.records:
        by_window.setdefault(window_key(w), []).append(w)
    sessions.close()
    windows.close()
    return by_session, by_window


def test_sigkill_restart_equals_uninterrupted_run(settings: Settings, tmp_path: Path) -> None:
    events = workload()
    other = settings.model_copy(update={"topic_prefix": settings.topic_prefix + "u."})
    ensure_topics(other, partitions=3)
    clean_sessions, clean_windows = run(other, tmp_path / "clean", events, kill_after=None)
    sessions, windows = run(settings, tmp_path / "killed", events, kill_after=N_SESSIONS // 3)
    assert_same(clean_sessions, clean_windows, sessions, windows)


def test_ten_sigkills_at_random_moments_equal_an_uninterrupted_run(settings: Settings, tmp_path: Path) -> None:
    """Kills 0.2-4 s apart: some land in a restore, some mid-batch, some between a state write
    and its outputs. Whatever each one interrupted, the end result is the uninterrupted one."""
    events = workload(seed=11)
    rng = random.Random(11)
    other = settings.model_copy(update={"topic_prefix": settings.topic_prefix + "u."})
    ensure_topics(other, partitions=3)
    clean_sessions, clean_windows = run(other, tmp_path / "clean", events, kill_after=None)
    kills = [rng.uniform(0.2, 4.0) for _ in range(10)]
    sessions, windows = run(settings, tmp_path / "killed", events, kill_after=None, kill_at_s=kills)
    assert_same(clean_sessions, clean_windows, sessions, windows)


def assert_same(clean_sessions: dict, clean_windows: dict, sessions: dict, windows: dict) -> None:
    assert len(clean_sessions) == N_SESSIONS
    assert set(sessions) == set(clean_sessions)
    for sid, versions in sessions.items():
        assert all(v == clean_sessions[sid][0] for v in versions), sid
    assert set(windows) == set(clean_windows)
    for key, versions in windows.items():
        assert all(v == clean_windows[key][0] for v in versions), key
    assert sum(w[0]["attempts"] for k, w in windows.items() if k[1] == "total") == N_SESSIONS
