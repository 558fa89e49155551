"""Window metrics from live traffic through a real worker equal the SPEC 7 reference.

Events are produced over time, each when the wall clock reaches its ``ts`` (plus up to 0.4 s,
less than the allowed lateness), as players send them: windows of 2 s close while sessions are
silent, sessions go silent mid-play and idle out (4 s), some change CDN. Delivered as one
backlog instead, the clock would jump past the idle closes and hide time credited to silent
sessions; here windows close on ticks, as in production. The latest revision of each window
must equal the reference, each session's window times must add up to its summary, and every
summary must equal the SPEC 6 reference.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
from live_traffic import PacedProducer, now_ms, plan_session
from spec6_reference import summarise
from spec7_reference import TIMES, differences, latest, session_sums, windows
from streams_harness import QOE_METRICS, SESSIONS, Reader, Worker, metric, metrics_port, produce, write_config

from playscope import topics
from playscope.config import Settings

pytestmark = pytest.mark.timeout(180)
WINDOW_S, LATENESS_S, IDLE_S = 2, 2, 4
LATE = 'playscope_streams_late_events_total{stream="qoe"}'
RECEIVED = 'playscope_streams_received_events_total{stream="qoe"}'


def test_live_traffic_windows_equal_the_reference(settings: Settings, tmp_path: Path) -> None:
    config = write_config(settings, tmp_path, window_s=WINDOW_S, lateness_s=LATENESS_S, idle_timeout_s=IDLE_S)
    log = tmp_path / "worker.log"
    worker = Worker(config, log, log_level="INFO")
    rng = random.Random(13)
    try:
        port = metrics_port(log)
        # one short session first, to know the worker is consuming before the live part starts
        t = now_ms()
        warmup = [{"event_id": f"w-{k}", "session_id": "w", "ts": t + k, "type": kind, "device": "dev-w"}
                  for k, kind in enumerate(["session_start", "playing", "session_end"])]
        produce(settings, topics.PLAYBACK_EVENTS, warmup)
        deadline = time.monotonic() + 60
        while not metric(port, RECEIVED) >= 3:
            assert time.monotonic() < deadline, "the worker consumed nothing in 60 s"
            time.sleep(0.2)
        base = now_ms() + 500
        planned = [plan_session(rng, f"s{i}", base + rng.randint(0, 8000), rng.randint(3, 7), 3000)
                   for i in range(24)]
        plan = [(e["ts"] + rng.randint(0, 400), e) for s in planned for e in s]
        plan += [(e["ts"] + rng.randint(0, 400), dict(e)) for e in rng.sample([e for s in planned for e in s], 5)]
        producer = PacedProducer(settings, plan)
        producer.start()
        assert producer.finish() == 0 and not producer.failures, producer.failures[:3]
        sessions = {"w": warmup, **producer.sent}
        expected = windows(sessions.values(), WINDOW_S * 1000, IDLE_S * 1000)
        summaries_reader = Reader(settings, SESSIONS)
        metrics_reader = Reader(settings, QOE_METRICS)

        def done(_: Any) -> bool:
            summaries_reader.poll()
            return set(sessions) <= {s["session_id"] for s in summaries_reader.records} and not differences(
                latest(metrics_reader.records), expected)

        metrics_reader.read_until(done, timeout=60)
        metrics_reader.read_until(lambda r: False, timeout=0, settle=3)  # a later revision must not undo it
        summaries_reader.read_until(lambda r: False, timeout=0, settle=0.5)
        summaries_reader.close()
        metrics_reader.close()
        late = metric(port, LATE)
    finally:
        code = worker.stop()
    assert code == 0
    rows = metrics_reader.records
    revised = sum(1 for r in rows if r.get("revision", 0) > 0)
    print(f"{len(sessions)} sessions, {sum(map(len, sessions.values()))} events, sender behind by at most "
          f"{producer.behind_ms} ms; {len(rows)} window records ({revised} revisions) for {len(expected)} "
          f"reference windows")
    got = latest(rows)
    diff = differences(got, expected)
    assert not diff, f"{len(diff)} differences from the SPEC 7 reference, e.g. {diff[:8]}"
    assert late == 0
    summaries = {s["session_id"]: s for s in summaries_reader.records}
    assert set(summaries) >= set(sessions), f"no summary for {sorted(set(sessions) - set(summaries))}"
    for sid, events in sessions.items():
        assert session_sums(got, f"dev-{sid}") == {f: summaries[sid][f] for f in TIMES}, sid
        reference = summarise(events, IDLE_S * 1000)
        assert {k: summaries[sid][k] for k in reference} == reference, sid
