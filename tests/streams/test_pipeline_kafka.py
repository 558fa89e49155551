"""SPEC 6-8 through real Kafka: a worker process consumes the raw topics and we read its outputs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from streams_harness import QOE_METRICS, SERVICE_METRICS, SESSIONS, Reader, Worker, produce, produce_raw, write_config
from streams_scenarios import SCENARIOS, T0, assert_matches, ev

from playscope import topics
from playscope.config import Settings

pytestmark = pytest.mark.timeout(240)
IDLE_S = 6  # longer than any gap between two events of a scenario (SPEC 6 idles out on a gap)
LATENESS_S = 5


@pytest.fixture
def worker(settings: Settings, tmp_path: Path):
    config = write_config(settings, tmp_path, lateness_s=LATENESS_S, idle_timeout_s=IDLE_S)
    w = Worker(config, tmp_path / "worker.log")
    yield w
    if w.proc.poll() is None:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-3000:]


def test_spec6_rules_out_of_order_and_duplicates(settings: Settings, worker: Worker) -> None:
    events, expected = [], {}
    for name, (make, exp) in SCENARIOS.items():
        session = make(f"s-{name}")
        events += session
        expected[f"s-{name}"] = dict(exp)
    expected["s-idle"]["end_ts"] = T0 + 5000 + IDLE_S * 1000
    events += events[:5]  # duplicates (same event_id)
    rng = random.Random(3)
    # out of order, but each event at most 3 s (less than the allowed lateness) behind the newest
    events.sort(key=lambda e: e["ts"] + rng.uniform(0, 3000))
    produce(settings, topics.PLAYBACK_EVENTS, events)
    reader = Reader(settings, SESSIONS)
    got = reader.read_until(lambda r: len(r) >= len(expected), timeout=90, settle=2)
    reader.close()
    by_id = {s["session_id"]: s for s in got}
    assert len(got) == len(expected), got
    for sid, exp in expected.items():
        assert_matches(by_id[sid], exp)


def test_qoe_window_split_across_boundary(settings: Settings, worker: Worker) -> None:
    # windows of 2 s: playing from 1.5 s to 4.5 s splits 500 / 2000 / 500 ms across three windows
    sid = "s-split"
    produce(
        settings,
        topics.PLAYBACK_EVENTS,
        [
            ev(sid, 0, "session_start", cdn="c1", country="DE"),
            ev(sid, 1500, "playing", bitrate_kbps=2000),
            ev(sid, 4500, "session_end"),
        ],
    )
    reader = Reader(settings, QOE_METRICS)
    rows = reader.read_until(lambda r: any(x["window_start"] == T0 + 4000 and x["group"] == "cdn" for x in r), 90)
    reader.close()
    cdn = {r["window_start"] - T0: r for r in rows if r["group"] == "cdn"}
    assert cdn[0]["play_ms"] == 500 and cdn[0]["watched_ms"] == 2000 and cdn[0]["attempts"] == 1
    assert cdn[0]["plays"] == 1 and cdn[0]["startup_ms_p50"] == pytest.approx(1500, rel=0.01)
    assert cdn[2000]["play_ms"] == 2000 and cdn[2000]["avg_bitrate_kbps"] == 2000
    assert cdn[4000]["play_ms"] == 500 and cdn[4000]["ended"] == 1 and cdn[4000]["completed"] == 1
    assert {r["group"] for r in rows if r["window_start"] == T0} == {
        "cdn",
        "isp",
        "device",
        "country",
        "cdn+country",
        "total",
    }
    keys = [(r["window_start"], r["group"]) for r in rows]
    assert len(keys) == len(set(keys)), "a window was emitted twice"


def test_service_windows_and_percentiles(settings: Settings, worker: Worker) -> None:
    rng = random.Random(11)
    latencies = [rng.lognormvariate(4, 1) for _ in range(3000)]
    logs = []
    for i, lat in enumerate(latencies):
        status = 500 if i % 10 == 0 else (404 if i % 10 == 1 else 200)
        logs.append(
            {
                "ts": T0 + (i % 1000),
                "service": "api",
                "route": "/play",
                "message": "req",
                "status": status,
                "latency_ms": lat,
            }
        )
    logs.append({"ts": T0 + 6000, "service": "api", "message": "tick"})  # moves the clock on
    produce(settings, topics.SERVICE_LOGS, logs, key_field="service")
    produce_raw(settings, topics.SERVICE_LOGS, [b"{not json", b'{"service": "api"}'])
    reader = Reader(settings, SERVICE_METRICS)
    rows = reader.read_until(lambda r: any(x["window_start"] == T0 and x["group"] == "service" for x in r), 90)
    reader.close()
    row = next(r for r in rows if r["window_start"] == T0 and r["group"] == "service")
    assert row["requests"] == 3000 and row["errors"] == 300 and row["error_rate"] == pytest.approx(0.1)
    assert row["by_status"] == {"1xx": 0, "2xx": 2400, "3xx": 0, "4xx": 300, "5xx": 300}
    ordered = sorted(latencies)
    for q, field in ((0.5, "latency_ms_p50"), (0.95, "latency_ms_p95"), (0.99, "latency_ms_p99")):
        exact = ordered[int(q * (len(ordered) - 1))]
        assert row[field] == pytest.approx(exact, rel=0.01)
    dead = Reader(settings, topics.DEADLETTER).read_until(lambda r: len(r) >= 2, 30)
    assert {d["source"] for d in dead} == {"streams"} and len(dead) == 2
