"""Property: random sessions summarised by the streaming logic equal the separate reference.

The fast variant drives the pure partition logic with many examples; the Kafka variant sends a
batch of random sessions through a real worker process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from spec6_reference import summarise
from streams_harness import SESSIONS, Reader, Worker, produce, write_config
from streams_strategies import session_events

from playscope import topics
from playscope.config import Settings
from playscope.provision import ensure_topics
from streams.qoe import IngestStats, QoePartition

T0 = 1_767_225_600_000
IDLE_MS = 120_000


def compare(got: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value), key
        else:
            assert got[key] == value, f"{key}: {got[key]!r} != {value!r}"


@hsettings(max_examples=300, deadline=None)
@given(st.data())
def test_pure_logic_matches_reference(data: st.DataObject) -> None:
    arrivals = data.draw(session_events("s", T0, max_gap_ms=20_000, jitter_ms=900))
    part = QoePartition(window_ms=10_000, lateness_ms=1000, idle_ms=IDLE_MS, tombstone_ms=3_600_000)
    stats = IngestStats()
    summaries = []
    for event in arrivals:
        part.ingest(dict(event), stats)
        summaries += part.advance().summaries
    while not summaries:
        part.tick(5_000)
        summaries += part.advance().summaries
    assert len(summaries) == 1
    compare(summaries[0], summarise(arrivals, IDLE_MS))


@pytest.mark.timeout(240)
# each example starts a worker: few examples, and no shrinking (a failure prints its example)
@hsettings(
    max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate]
)
@given(st.data())
def test_kafka_pipeline_matches_reference(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    directory: Path = tmp_path_factory.mktemp("prop")
    prefix = directory.name
    # each example gets its own topics and app id: a restored clock would make its events late
    settings = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}{prefix}."})
    ensure_topics(settings, partitions=3)
    idle_ms = 4000
    sessions = [
        data.draw(session_events(f"{prefix}-{i}", T0 + i * 700, max_gap_ms=1500, jitter_ms=1500))
        for i in range(data.draw(st.integers(5, 25)))
    ]
    # interleave sessions by time, keeping each session's own arrival order (and its disorder)
    arrivals = []
    cursors = [0] * len(sessions)
    while any(c < len(s) for c, s in zip(cursors, sessions, strict=True)):
        i = min((k for k, s in enumerate(sessions) if cursors[k] < len(s)), key=lambda k: sessions[k][cursors[k]]["ts"])
        arrivals.append(sessions[i][cursors[i]])
        cursors[i] += 1
    worker = Worker(
        write_config(settings, directory, window_s=2, lateness_s=3, idle_timeout_s=idle_ms / 1000),
        directory / "worker.log",
    )
    try:
        produce(settings, topics.PLAYBACK_EVENTS, arrivals)
        reader = Reader(settings, SESSIONS)
        wanted = {s[0]["session_id"] for s in sessions}
        rows = reader.read_until(lambda r: wanted <= {x["session_id"] for x in r}, timeout=120)
        reader.close()
    finally:
        assert worker.stop() == 0
    got = {r["session_id"]: r for r in rows if r["session_id"] in wanted}
    assert set(got) == wanted
    for s in sessions:
        compare(got[s[0]["session_id"]], summarise(s, idle_ms))
