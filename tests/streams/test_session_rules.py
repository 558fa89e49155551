"""SPEC 6 rules on the pure partition logic (no Kafka): hand-computed expectations."""

from __future__ import annotations

import random

import pytest
from streams_scenarios import FULL_EXPECTED, SCENARIOS, T0, assert_matches, ev, full_session

from streams.qoe import IngestStats, QoePartition

LATENESS = 1000
IDLE = 120_000


def run(events: list[dict], until: int = 400_000) -> tuple[list[dict], QoePartition, IngestStats]:
    part = QoePartition(window_ms=60_000, lateness_ms=LATENESS, idle_ms=IDLE, tombstone_ms=3_600_000)
    stats = IngestStats()
    summaries: list[dict] = []
    for event in events:
        part.ingest(dict(event), stats)
        summaries += part.advance().summaries
    while part.clock is not None and part.clock < T0 + until:
        part.tick(10_000)
        summaries += part.advance().summaries
    return summaries, part, stats


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name: str) -> None:
    make, expected = SCENARIOS[name]
    summaries, part, _ = run(make())
    assert len(summaries) == 1
    assert_matches(summaries[0], expected)
    assert not part.sessions


def test_out_of_order_within_lateness_gives_the_same_summary() -> None:
    events = full_session("s-shuffled")
    head, rest = events[:1], events[1:]
    random.Random(7).shuffle(rest)
    # shuffled arrival, all within the allowed lateness of the latest ts seen
    summaries, _, _ = run(sorted(head + rest, key=lambda e: e["ts"] // 2000), until=400_000)
    by_arrival = run(rest[:0] + events)[0]
    assert summaries[0] == {**by_arrival[0], "session_id": "s-shuffled"}
    assert_matches(summaries[0], FULL_EXPECTED)


def test_duplicates_are_dropped() -> None:
    events = full_session("s-dup")
    doubled = [e for e in events for _ in (0, 1)]
    summaries, _, stats = run(doubled)
    assert stats.duplicates == len(events)
    assert_matches(summaries[0], FULL_EXPECTED)


def test_events_after_close_are_counted_not_resummarised() -> None:
    events = [ev("s-after", 0, "session_start"), ev("s-after", 100, "session_end")]
    late = ev("s-after", 200_000, "heartbeat")
    summaries, part, _ = run(events)
    stats = IngestStats()
    part.ingest(late, stats)
    assert part.advance().summaries == []
    assert stats.after_close == 1
    assert len(summaries) == 1


def test_partition_state_round_trip_mid_session() -> None:
    import orjson

    events = full_session("s-rt")
    first, second = events[:6], events[6:]
    _, part, _ = run(first, until=0)
    restored = QoePartition(window_ms=60_000, lateness_ms=LATENESS, idle_ms=IDLE, tombstone_ms=3_600_000)
    restored.load(orjson.loads(orjson.dumps(part.to_dict())))
    assert restored.to_dict() == part.to_dict()
    stats = IngestStats()
    summaries = []
    for event in second:
        restored.ingest(dict(event), stats)
        summaries += restored.advance().summaries
    restored.tick(10_000)
    summaries += restored.advance().summaries
    assert_matches(summaries[0], {**FULL_EXPECTED})
