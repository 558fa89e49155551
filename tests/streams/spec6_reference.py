"""A plain, separate reference implementation of SPEC 6 used to check the real pipeline.

Written straight from the SPEC text, for one complete session at a time (all its events known
up front), without any of the streaming machinery.
"""

from __future__ import annotations

from typing import Any

DIMS = ("device", "os", "app_version", "cdn", "isp", "country", "title_id", "profile_id")


def summarise(arrivals: list[dict[str, Any]], idle_ms: int) -> dict[str, Any]:
    seen: set[str] = set()
    unique = []
    for e in arrivals:
        if e["event_id"] not in seen:
            seen.add(e["event_id"])
            unique.append(e)
    events = [e for _, e in sorted(enumerate(unique), key=lambda p: (p[1]["ts"], p[0]))]

    state = "startup"
    played = False
    first_play = None
    spent = {"startup": 0, "playing": 0, "rebuffering": 0, "seeking": 0, "paused": 0}
    rebuffers = seeks = switches = used = 0
    bitrate = None
    weighted = known = 0.0
    dims: dict[str, str] = {}
    error_code = None
    closed_by = None
    end_ts = None
    start = events[0]["ts"]
    prev = start
    for e in events:
        t = e["ts"]
        if t - prev > idle_ms:  # idle before this event: the session closed, later events unused
            closed_by, end_ts = "idle", prev + idle_ms
            break
        spent[state] += t - prev
        if state == "playing" and bitrate is not None:
            weighted += bitrate * (t - prev)
            known += t - prev
        prev = t
        used += 1
        for d in DIMS:
            if isinstance(e.get(d), str) and e[d]:
                dims[d] = e[d]
        kind = e["type"]
        new_rate = e.get("to_kbps") if kind == "bitrate_change" else None
        if new_rate is None:
            new_rate = e.get("bitrate_kbps")
        if new_rate is not None:
            if bitrate is not None and new_rate != bitrate:
                switches += 1
            bitrate = float(new_rate)
        fatal = kind == "error" and e.get("fatal") is True
        if kind == "session_end" or fatal:
            closed_by = "error" if fatal else "end"
            end_ts = t
            if fatal:
                error_code = e.get("error_code")
            break
        if kind == "seek":
            seeks += 1
        nxt = state
        if kind == "pause":
            nxt = "paused"
        elif kind == "seek":
            nxt = "seeking"
        elif state == "startup" and kind == "playing":
            nxt = "playing"
        elif state == "playing" and kind == "rebuffer_start":
            nxt = "rebuffering"
            rebuffers += 1
        elif state == "rebuffering" and kind in ("rebuffer_end", "playing", "resume"):
            nxt = "playing"
        elif (state == "seeking" and kind in ("rebuffer_end", "playing", "resume")) or (
            state == "paused" and kind in ("resume", "playing")
        ):
            nxt = "playing" if played or kind == "playing" else "startup"
        if nxt == "playing" and not played:
            played, first_play = True, t
        state = nxt
    if closed_by is None:
        closed_by, end_ts = "idle", prev + idle_ms
    fatal_end = closed_by == "error"
    watched = spent["startup"] + spent["playing"] + spent["rebuffering"] + spent["seeking"]
    return {
        "start_ts": start,
        "end_ts": end_ts,
        "startup_ms": None if first_play is None else first_play - start,
        "play_ms": spent["playing"],
        "rebuffer_ms": spent["rebuffering"],
        "seek_ms": spent["seeking"],
        "paused_ms": spent["paused"],
        "watched_ms": watched,
        "rebuffer_count": rebuffers,
        "seek_count": seeks,
        "rebuffer_ratio": spent["rebuffering"] / watched if watched else 0.0,
        "avg_bitrate_kbps": weighted / known if known else None,
        "bitrate_switches": switches,
        "outcome": ("vpf" if played else "vsf") if fatal_end else ("completed" if played else "ebvs"),
        "error_code": error_code,
        "event_count": used,
        "closed_by": closed_by,
        **{d: dims.get(d, "unknown") for d in DIMS},
    }
