"""The SPEC 7 reference checked on its own: hand-computed cases, and for random sessions its
window sums agree with the SPEC 6 reference's summary (times, counts, outcome, bitrate)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from spec6_reference import summarise
from spec7_reference import COUNTS, TIMES, differences, session_cells, windows
from streams_strategies import session_events, timed_session

T0 = 1_767_225_600_000
W = 2000
IDLE = 10_000


def ev(sid: str, dt: int, kind: str, **fields: object) -> dict[str, object]:
    return {"event_id": f"{sid}-{dt}-{kind}", "session_id": sid, "ts": T0 + dt, "type": kind, **fields}


def test_play_splits_at_window_boundaries() -> None:
    s = [ev("a", 0, "session_start", cdn="c1", country="DE"), ev("a", 1500, "playing", bitrate_kbps=2000),
         ev("a", 4500, "session_end")]
    got = windows([s], W, IDLE)
    cdn = {ws - T0: r for (ws, name, _), r in got.items() if name == "cdn"}
    assert [cdn[k]["play_ms"] for k in (0, 2000, 4000)] == [500, 2000, 500]
    assert [cdn[k]["watched_ms"] for k in (0, 2000, 4000)] == [2000, 2000, 500]
    assert cdn[0]["attempts"] == cdn[0]["plays"] == 1 and cdn[0]["startup_ms_p50"] == 1500
    assert cdn[2000]["avg_bitrate_kbps"] == 2000 and cdn[2000]["rebuffer_ratio"] == 0
    assert cdn[4000]["ended"] == cdn[4000]["completed"] == 1 and cdn[4000]["failure_rate"] == 0
    assert {name for (ws, name, _) in got if ws == T0} == {"cdn", "isp", "device", "country", "cdn+country", "total"}
    assert got[(T0, "cdn+country", ("c1", "DE"))]["play_ms"] == 500


def test_a_silent_session_adds_no_time_after_its_last_event() -> None:
    # rebuffering from 3 s, then nothing: the idle close (at 3 s + 10 s) counts ended, no time
    s = [ev("b", 0, "session_start"), ev("b", 1000, "playing"), ev("b", 3000, "rebuffer_start")]
    got = windows([s], W, IDLE)
    total = {ws - T0: r for (ws, name, _), r in got.items() if name == "total"}
    assert sum(r["rebuffer_ms"] for r in total.values()) == 0
    assert sum(r["watched_ms"] for r in total.values()) == 3000
    assert total[2000]["rebuffer_count"] == 1
    assert total[12_000]["ended"] == total[12_000]["completed"] == 1 and total[12_000]["watched_ms"] == 0


def test_a_cdn_switch_moves_later_time_and_counts() -> None:
    s = [ev("c", 0, "session_start", cdn="x"), ev("c", 500, "playing"), ev("c", 2500, "heartbeat", cdn="y"),
         ev("c", 3000, "rebuffer_start"), ev("c", 3500, "error", fatal=True, error_code="E")]
    got = windows([s], W, IDLE)
    assert got[(T0, "cdn", ("x",))]["play_ms"] == 1500
    assert got[(T0 + 2000, "cdn", ("x",))]["play_ms"] == 500  # 2.0-2.5 s: the interval began on x
    y = got[(T0 + 2000, "cdn", ("y",))]
    assert (y["play_ms"], y["rebuffer_ms"], y["rebuffer_count"], y["vpf"], y["failure_rate"]) == (500, 500, 1, 1, 1.0)


def test_percentiles_are_the_lower_rank_sample() -> None:
    sessions = [[ev(f"p{i}", 0, "session_start"), ev(f"p{i}", 100 * (i + 1), "playing")] for i in range(10)]
    total = windows(sessions, W, IDLE)[(T0, "total", ())]
    assert (total["startup_ms_p50"], total["startup_ms_p95"], total["plays"]) == (500, 900, 10)


def test_differences_reports_a_changed_field_and_ignores_empty_records() -> None:
    s = [ev("d", 0, "session_start"), ev("d", 1500, "playing"), ev("d", 4500, "session_end")]
    want = windows([s], W, IDLE)
    got = {k: dict(v) for k, v in want.items()}
    empty = {**dict.fromkeys((*COUNTS, *TIMES, "late_events"), 0), "avg_bitrate_kbps": None, "startup_ms_p50": None}
    got[(T0 + 8000, "total", ())] = empty
    assert differences(got, want) == []
    got[(T0 + 2000, "total", ())]["watched_ms"] += 1
    assert differences(got, want) == [f"{(T0 + 2000, 'total', ())} watched_ms: product 2001 reference 2000"]


@hsettings(max_examples=400, deadline=None)
@given(st.data())
def test_window_sums_equal_the_summary(data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        arrivals = data.draw(timed_session("s", T0 + 7, max_gap_ms=9000))
    else:  # the older strategy: jittered arrival order and gaps that can pass the idle timeout
        arrivals = data.draw(session_events("s", T0 + 7, max_gap_ms=15_000, jitter_ms=900))
    summary = summarise(arrivals, IDLE)
    cells = session_cells(arrivals, W, IDLE)
    sums = {f: sum(c.counts[f] for c in cells.values()) for f in (*COUNTS, *TIMES)}
    assert (sums["play_ms"], sums["rebuffer_ms"], sums["watched_ms"]) == (
        summary["play_ms"], summary["rebuffer_ms"], summary["watched_ms"])
    assert sums["attempts"] == sums["ended"] == 1
    assert sums[summary["outcome"]] == 1 and sums["completed"] + sums["vsf"] + sums["vpf"] + sums["ebvs"] == 1
    assert sums["rebuffer_count"] == summary["rebuffer_count"]
    assert sums["plays"] == (summary["startup_ms"] is not None)
    assert [s for c in cells.values() for s in c.startups] == ([] if summary["startup_ms"] is None
                                                               else [summary["startup_ms"]])
    bitrate_ms = sum(c.bitrate_ms for c in cells.values())
    avg = sum(c.bitrate_sum for c in cells.values()) / bitrate_ms if bitrate_ms else None
    assert avg == (None if summary["avg_bitrate_kbps"] is None else pytest.approx(summary["avg_bitrate_kbps"]))
    ended_at = [ws for (ws, _), c in cells.items() if c.counts["ended"]]
    assert ended_at == [summary["end_ts"] - summary["end_ts"] % W]
    assert all(c.counts["watched_ms"] <= W for c in cells.values())
