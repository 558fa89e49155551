"""A broker outage of 40 s in the middle of live traffic: clients keep producing (each event
dated when it is sent, as players do) and their producers hold what they cannot deliver; once
the broker is back the held events arrive, all within the allowed lateness of their ``ts``.

None of them may be counted late (``late_events`` of every window and
``playscope_streams_late_events_total`` are 0), every summary equals the SPEC 6 reference, and
every window (latest revision) equals the SPEC 7 reference. With ticks delivered after the
outage ahead of the held-back events, all of those events were late. Uses a broker of its own
(``private_kafka``), never the shared one.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for
from live_traffic import PacedProducer, now_ms, plan_session
from spec6_reference import summarise
from spec7_reference import TIMES, differences, latest, session_sums, windows
from streams_harness import QOE_METRICS, SESSIONS, Reader, Worker, metric, metrics_port, produce, write_config

from playscope import topics
from playscope.config import Settings
from playscope.provision import ensure_topics

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
OUTAGE_S = float(os.environ.get("PLAYSCOPE_TEST_OUTAGE_S", "40"))
BEFORE_S, AFTER_S = 8.0, 8.0  # live traffic before the kill and after the restart
RESTART_S = 60.0  # longest the private broker may take to be back (planned traffic covers it)
WINDOW_S, LATENESS_S, IDLE_S = 2, 2, 5
LATE = 'playscope_streams_late_events_total{stream="qoe"}'
RECEIVED = 'playscope_streams_received_events_total{stream="qoe"}'


def test_no_event_late_after_an_outage_with_live_traffic(
    private_kafka: Any, settings: Settings, tmp_path: Path
) -> None:
    broker = private_kafka()
    mine = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"bootstrap": broker.bootstrap})})
    ensure_topics(mine, partitions=3)
    config = write_config(mine, tmp_path, window_s=WINDOW_S, lateness_s=LATENESS_S, idle_timeout_s=IDLE_S)
    log = tmp_path / "worker.log"
    worker = Worker(config, log, log_level="INFO")
    rng = random.Random(40)
    phases: dict[str, float] = {}
    t0 = time.monotonic()
    try:
        port = metrics_port(log)
        t = now_ms()
        warmup = [{"event_id": f"w-{k}", "session_id": "w", "ts": t + k, "type": kind, "device": "dev-w"}
                  for k, kind in enumerate(["session_start", "playing", "session_end"])]
        produce(mine, topics.PLAYBACK_EVENTS, warmup)
        wait_for(lambda: metric(port, RECEIVED) >= 3, 90, "the worker to consume")
        base = now_ms() + 500
        # planned past the restart (it takes a while); cut AFTER_S after the broker is back
        span_ms = int((BEFORE_S + OUTAGE_S + RESTART_S + AFTER_S) * 1000)
        planned = [plan_session(rng, f"s{i}", base + rng.randint(0, span_ms - 6000), rng.randint(3, 8), 2500)
                   for i in range(int(span_ms / 200))]
        plan = [(e["ts"] + rng.randint(0, 300), e) for s in planned for e in s]
        # clients retry for minutes; reconnect within a second once the broker is back
        producer = PacedProducer(mine, plan, **{"message.timeout.ms": 300_000, "reconnect.backoff.max.ms": 1000})
        producer.start()
        time.sleep(max(0.0, (base - now_ms()) / 1000 + BEFORE_S))
        broker.kill()
        phases["killed"] = time.monotonic() - t0
        time.sleep(OUTAGE_S)  # the outage (not a timing assertion): the clients keep producing meanwhile
        assert worker.proc.poll() is None, "the worker exited during the outage"
        broker.start()
        broker.wait_healthy(timeout_s=120)
        phases["broker back"] = time.monotonic() - t0
        producer.stop_at_ms = now_ms() + int(AFTER_S * 1000)
        assert producer.is_alive(), "the live traffic ended before the broker was back"
        assert producer.finish(180) == 0 and not producer.failures, producer.failures[:3]
        phases["all delivered"] = time.monotonic() - t0
        sessions = {"w": warmup, **producer.sent}
        produced = sum(map(len, sessions.values()))
        expected = windows(sessions.values(), WINDOW_S * 1000, IDLE_S * 1000)
        summaries_reader = Reader(mine, SESSIONS)
        metrics_reader = Reader(mine, QOE_METRICS)

        def done(_: Any) -> bool:
            summaries_reader.poll()
            return set(sessions) <= {s["session_id"] for s in summaries_reader.records} and not differences(
                latest(metrics_reader.records), expected)

        metrics_reader.read_until(done, timeout=120)
        phases["windows complete"] = time.monotonic() - t0
        metrics_reader.read_until(lambda r: False, timeout=0, settle=3)  # a later revision must not undo it
        summaries_reader.read_until(lambda r: False, timeout=0, settle=0.5)
        summaries_reader.close()
        metrics_reader.close()
        late = metric(port, LATE)
        received = metric(port, RECEIVED)
    finally:
        code = worker.stop()
    assert code == 0
    rows = metrics_reader.records
    got = latest(rows)
    late_in_windows = sum(r["late_events"] for (_, name, _), r in got.items() if name == "total")
    print(f"{len(sessions)} sessions, {produced} events (sender behind by at most {producer.behind_ms} ms); "
          f"late: counter {late}, windows {late_in_windows}; {len(rows)} window records for {len(expected)} "
          f"reference windows; phases {phases}")
    assert received == produced, "an event was processed twice or not at all"
    assert late == 0 and late_in_windows == 0, "events held back during the outage were counted late"
    summaries = {s["session_id"]: s for s in summaries_reader.records}
    assert set(summaries) >= set(sessions), f"no summary for {sorted(set(sessions) - set(summaries))[:10]}"
    references = {sid: summarise(events, IDLE_S * 1000) for sid, events in sessions.items()}
    wrong = [sid for sid, ref in references.items() if {k: summaries[sid][k] for k in ref} != ref]
    assert not wrong, f"{len(wrong)} summaries differ from the SPEC 6 reference, e.g. {wrong[:5]}"
    diff = differences(got, expected)
    assert not diff, f"{len(diff)} differences from the SPEC 7 reference, e.g. {diff[:8]}"
    for sid in sessions:
        assert session_sums(got, f"dev-{sid}") == {f: summaries[sid][f] for f in TIMES}, sid
