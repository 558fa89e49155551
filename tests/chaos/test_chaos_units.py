"""The chaos checker's own arithmetic: the expected summaries it compares against, and its counts."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import pytest

from playscope.chaos.check import check_alerts, check_events, check_logs, check_sessions
from playscope.chaos.load import script_session

sys.path.insert(0, str(Path(__file__).parents[1] / "streams"))  # the independent SPEC 6 reference
from spec6_reference import summarise


@pytest.mark.parametrize("stalls", [False, True])
@pytest.mark.parametrize("seed", range(20))
def test_script_expectation_matches_the_spec6_reference(seed: int, stalls: bool) -> None:
    script = script_session(f"s{seed}", "chaos-bad", 1_795_000_000_000 + seed, random.Random(seed), 16.0, stalls)
    want = summarise(script.events, idle_ms=120_000)
    got = script.expected()
    for key in ("startup_ms", "rebuffer_ms", "rebuffer_count", "watched_ms", "play_ms", "event_count",
                "outcome", "closed_by", "cdn"):
        assert got[key] == want[key], key


def test_stalls_only_when_asked() -> None:
    calm = script_session("a", "c", 0, random.Random(1), 16.0, stalls=False)
    stormy = script_session("b", "c", 0, random.Random(1), 16.0, stalls=True)
    assert calm.expected()["rebuffer_count"] == 0
    assert stormy.expected()["rebuffer_count"] > 0


def test_event_counts() -> None:
    acked = {"a", "b", "c"}
    indexed = Counter({"a": 1, "b": 2, "x": 1})
    assert check_events(acked, indexed) == {"acknowledged": 3, "indexed": 2, "lost": 1, "duplicated": 1,
                                            "unacknowledged_indexed": 1}


def test_log_counts() -> None:
    assert check_logs(["l1", "l2"], Counter({"l1": 1})) == {
        "log_lines": 2, "log_lines_indexed": 1, "log_lines_lost": 1, "log_lines_duplicated": 0}


def test_sessions_judged_only_when_fully_acknowledged() -> None:
    rng = random.Random(3)
    full = script_session("full", "c", 0, rng, 16.0, False)
    partial = script_session("partial", "c", 0, rng, 16.0, False)
    acked = {e["event_id"] for e in full.events} | {partial.events[0]["event_id"]}
    wrong = {**full.expected(), "play_ms": full.expected()["play_ms"] + 1}
    counts, mismatches = check_sessions({"full": full, "partial": partial}, acked, {"full": [wrong]})
    assert counts == {"sessions_expected": 1, "sessions_exact": 0, "sessions_started": 2, "sessions_duplicated": 0}
    assert mismatches[0]["play_ms"]["got"] == full.expected()["play_ms"] + 1
    counts, _ = check_sessions({"full": full}, acked, {"full": [full.expected(), full.expected()]})
    assert counts["sessions_exact"] == 1 and counts["sessions_duplicated"] == 1


def test_alert_duplicates_per_incident() -> None:
    firing = {"rule": "r", "group_key": "cdn=x", "status": "firing", "ts": 1}
    resolved = {**firing, "status": "resolved", "ts": 2}
    assert check_alerts([firing, resolved], incidents=1) == {
        "alerts_firing": 1, "alerts_resolved": 1, "alerts_duplicated": 0, "alerts_redelivered": 0}
    refired = {**firing, "ts": 3}  # a second state change: a duplicate alert
    assert check_alerts([firing, refired, resolved], incidents=1)["alerts_duplicated"] == 1
    again = check_alerts([firing, firing, resolved], incidents=1)  # the same change delivered twice
    assert again["alerts_duplicated"] == 0 and again["alerts_redelivered"] == 1
