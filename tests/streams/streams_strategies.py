"""Hypothesis strategies: random playback sessions with duplicates and bounded disorder."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from playscope.events import EVENT_TYPES

# Every SPEC 4 type but the one that opens a session (the first event is always session_start).
KINDS = sorted(EVENT_TYPES - {"session_start"})


@st.composite
def session_events(draw: st.DrawFn, sid: str, t0: int, max_gap_ms: int, jitter_ms: int) -> list[dict[str, Any]]:
    """One session's events in arrival order: ts order with jitter below ``jitter_ms``, some duplicates."""
    n = draw(st.integers(1, 14))
    t = t0
    events: list[dict[str, Any]] = []
    for i in range(n):
        kind = "session_start" if i == 0 else draw(st.sampled_from(KINDS))
        if i:
            t += draw(st.integers(0, max_gap_ms))
        e: dict[str, Any] = {"event_id": f"{sid}-{i}", "session_id": sid, "ts": t, "type": kind}
        if draw(st.booleans()):
            e["cdn"] = draw(st.sampled_from(["cdn-a", "cdn-b"]))
        if draw(st.integers(0, 3)) == 0:
            e["country"] = draw(st.sampled_from(["FR", "US"]))
        if kind == "bitrate_change":
            e["to_kbps"] = draw(st.sampled_from([800, 1600, 3200]))
        elif draw(st.integers(0, 3)) == 0:
            e["bitrate_kbps"] = draw(st.sampled_from([800, 1600, 3200]))
        if kind == "error":
            e["fatal"] = draw(st.booleans())
            e["error_code"] = "E1"
        events.append(e)
    dups = draw(st.lists(st.integers(0, n - 1), max_size=3))
    events += [dict(events[i]) for i in dups]
    jitter = [draw(st.integers(0, jitter_ms)) for _ in events]
    order = sorted(range(len(events)), key=lambda k: events[k]["ts"] + jitter[k])
    return [events[k] for k in order]


@st.composite
def timed_session(draw: st.DrawFn, sid: str, t0: int, max_gap_ms: int) -> list[dict[str, Any]]:
    """One session's events in ``ts`` order (arrival order is the caller's): the four window
    dimensions, with ``device`` unique to the session (so its windows can be told apart), cdn,
    isp and country set on some events and changing mid-session; some duplicates right after
    their original. It may end (``session_end``, fatal error) or just go silent."""
    n = draw(st.integers(1, 12))
    t = t0
    events: list[dict[str, Any]] = []
    for i in range(n):
        kind = "session_start" if i == 0 else draw(st.sampled_from(KINDS))
        if i:
            t += draw(st.integers(0, max_gap_ms))
        e: dict[str, Any] = {"event_id": f"{sid}-{i}", "session_id": sid, "ts": t, "type": kind}
        if i == 0:
            e["device"] = f"dev-{sid}"
        if i == 0 or draw(st.integers(0, 2)) == 0:
            e["cdn"] = draw(st.sampled_from(["cdn-a", "cdn-b"]))
        if draw(st.integers(0, 3)) == 0:
            e["isp"] = draw(st.sampled_from(["isp-1", "isp-2"]))
        if draw(st.integers(0, 3)) == 0:
            e["country"] = draw(st.sampled_from(["FR", "US"]))
        if kind == "bitrate_change":
            e["to_kbps"] = draw(st.sampled_from([800, 1600, 3200]))
        elif draw(st.integers(0, 3)) == 0:
            e["bitrate_kbps"] = draw(st.sampled_from([800, 1600, 3200]))
        if kind == "error":
            e["fatal"] = draw(st.booleans())
            e["error_code"] = "E1"
        events.append(e)
        if draw(st.integers(0, 9)) == 0:
            events.append(dict(e))
        if kind == "session_end" or (kind == "error" and e["fatal"]):
            break
    return events
