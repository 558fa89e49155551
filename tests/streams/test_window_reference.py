"""Property: the window partials of the pure partition logic equal the SPEC 7 reference, and
each session's window times add up to its summary, whatever the arrival pattern.

Random sessions (some ending, some going silent mid-play until they idle out, gaps longer
than a window and some longer than the idle timeout) reach one :class:`streams.qoe.QoePartition` as

* one backlog (everything ingested, in any order, then the clock moves);
* live traffic: arrivals in ``ts`` order, the clock moved on by ticks as wall time passes
  between batches (so windows close while sessions are silent);
* live traffic with each event delayed by up to just under the allowed lateness.

A window may be emitted more than once (a correction); the latest emission of a window start
holds the whole partial of the partition, so it is the one compared.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from spec6_reference import summarise
from spec7_reference import TIMES, Key, differences, latest, session_sums, windows
from streams_strategies import timed_session

from streams.qoe import IngestStats, Output, QoePartition
from streams.windows import qoe_record

T0 = 1_767_225_600_000
WINDOW_MS = 2000
LATENESS_MS = 1000
IDLE_MS = 10_000


class Drive:
    """One partition fed by a test, keeping every summary and the latest emission per window."""

    def __init__(self, window_ms: int = WINDOW_MS, lateness_ms: int = LATENESS_MS, idle_ms: int = IDLE_MS) -> None:
        self.window_ms = window_ms
        self.part = QoePartition(window_ms, lateness_ms, idle_ms, tombstone_ms=3_600_000)
        self.stats = IngestStats()
        self.clock: int | None = None  # SPEC 7: the latest ts seen, moved on by ticks
        self.summaries: list[dict[str, Any]] = []
        self.partials: dict[int, dict[str, dict[str, Any]]] = {}

    def ingest(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            self.part.ingest(dict(e), self.stats)
            self.clock = e["ts"] if self.clock is None else max(self.clock, e["ts"])
        self._take(self.part.advance())

    def tick_to(self, now: int, step: int) -> None:
        """Ticks of ``step`` ms (each followed by an advance) while the clock stays at or before ``now``."""
        while self.clock is not None and self.clock + step <= now:
            self.part.tick(step)
            self.clock += step
            self._take(self.part.advance())

    def _take(self, out: Output) -> None:
        self.summaries += out.summaries
        for emitted in out.windows:
            ws, groups = emitted[0], emitted[1]
            self.partials[ws] = groups

    def records(self) -> dict[Key, dict[str, Any]]:
        return latest(
            qoe_record(ws, self.window_ms, key, agg) for ws, groups in sorted(self.partials.items())
            for key, agg in groups.items()
        )


def arrivals_of(sessions: list[list[dict[str, Any]]], delays: list[list[int]]) -> list[tuple[int, dict[str, Any]]]:
    """(arrival time, event) of every event, in arrival order (ties keep each session's order)."""
    tagged = [(e["ts"] + d, i, k, e) for i, (s, ds) in enumerate(zip(sessions, delays, strict=True))
              for k, (e, d) in enumerate(zip(s, ds, strict=True))]
    tagged.sort(key=lambda x: (x[0], x[1], x[2]))
    return [(at, e) for at, _, _, e in tagged]


@hsettings(max_examples=200, deadline=None)
@given(st.data())
def test_windows_equal_the_reference(data: st.DataObject) -> None:
    window_ms, lateness_ms, idle_ms = data.draw(
        st.sampled_from([(WINDOW_MS, LATENESS_MS, IDLE_MS), (3000, 2500, 7000), (1000, 0, 4000)]), label="sizes")
    n = data.draw(st.integers(1, 6), label="sessions")
    starts = [T0 + data.draw(st.integers(0, 20_000)) for _ in range(n)]
    max_gap = idle_ms * 7 // 5
    sessions = [data.draw(timed_session(f"s{i}", t0, max_gap), label=f"s{i}") for i, t0 in enumerate(starts)]
    pattern = data.draw(st.sampled_from(["backlog", "live", "live-jitter"]), label="pattern")
    # a backlog is read whole before the clock moves: any arrival order; live, less than the lateness
    jitter = {"backlog": 30_000, "live": 0, "live-jitter": max(0, lateness_ms - 1)}[pattern]
    delays = [[data.draw(st.integers(0, jitter)) for _ in s] for s in sessions]
    arrivals = arrivals_of(sessions, delays)
    drive = Drive(window_ms, lateness_ms, idle_ms)
    step = data.draw(st.sampled_from([250, 1000, 2500, 5000]), label="tick_ms")
    if pattern == "backlog":
        drive.ingest([e for _, e in arrivals])
    else:
        i = 0
        while i < len(arrivals):
            size = data.draw(st.integers(1, 4))
            batch = arrivals[i : i + size]
            drive.tick_to(batch[0][0], step)
            drive.ingest([e for _, e in batch])
            i += size
    last = max(e["ts"] for s in sessions for e in s)
    drive.tick_to(last + idle_ms + lateness_ms + 3 * window_ms + step, step)

    # each session's own arrival order is what the references see (ties in ts go by arrival)
    own = [[e for _, e in arrivals if e["session_id"] == s[0]["session_id"]] for s in sessions]
    summaries = {s["session_id"]: s for s in drive.summaries}
    assert sorted(summaries) == sorted(s[0]["session_id"] for s in sessions) and len(drive.summaries) == n
    assert drive.stats.late == 0
    got = drive.records()
    assert differences(got, windows(own, window_ms, idle_ms)) == []
    for events in own:
        sid = events[0]["session_id"]
        summary = summaries[sid]
        assert session_sums(got, f"dev-{sid}") == {f: summary[f] for f in TIMES}, sid
        expected = summarise(events, idle_ms)
        assert {f: summary[f] for f in expected} == expected
    totals = {f: sum(r[f] for (_, name, _), r in got.items() if name == "total") for f in TIMES}
    assert totals == {f: sum(s[f] for s in drive.summaries) for f in TIMES}


def test_a_session_silent_just_past_the_idle_timeout_adds_no_window_time() -> None:
    """Silent for 10.2 s (idle timeout 10 s, lateness 1 s): it closes idle at 10.5 s and the
    event at 10.7 s is not its own, so no window may hold the 10.2 s before it (live traffic:
    the event is known, waiting in the reorder buffer, when the windows up to 10 s close)."""
    events = [{"event_id": "a", "session_id": "x", "ts": T0 + 500, "type": "session_start", "device": "dev-x"},
              {"event_id": "b", "session_id": "x", "ts": T0 + 10_700, "type": "playing"}]
    drive = Drive()
    for e in events:
        drive.tick_to(e["ts"], 250)
        drive.ingest([e])
    drive.tick_to(T0 + 30_000, 250)
    (summary,) = drive.summaries
    assert (summary["closed_by"], summary["watched_ms"], summary["event_count"]) == ("idle", 0, 1)
    got = drive.records()
    assert session_sums(got, "dev-x") == dict.fromkeys(TIMES, 0)
    assert differences(got, windows([events], WINDOW_MS, IDLE_MS)) == []
