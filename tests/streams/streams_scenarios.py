"""Hand-computed SPEC 6 scenarios shared by the unit tests and the tests through real Kafka.

Times are offsets in ms from T0 (aligned to a minute, so window arithmetic stays readable).
"""

from __future__ import annotations

import itertools
from typing import Any

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_ids = itertools.count()


def ev(sid: str, t: int, kind: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"{sid}-{next(_ids)}", "session_id": sid, "ts": T0 + t, "type": kind, **extra}


def full_session(sid: str = "s-full") -> list[dict[str, Any]]:
    """Startup with rebuffering (excluded), a pause, a counted rebuffer, a seek with buffering."""
    return [
        ev(sid, 0, "session_start", cdn="cdn-a", country="FR", device="tv"),
        ev(sid, 500, "rebuffer_start"),  # during startup: startup time, not a rebuffer
        ev(sid, 900, "rebuffer_end"),
        ev(sid, 1000, "playing", bitrate_kbps=3000),
        ev(sid, 5000, "pause"),
        ev(sid, 8000, "resume"),
        ev(sid, 8000, "bitrate_change", from_kbps=3000, to_kbps=4500),
        ev(sid, 10000, "rebuffer_start"),
        ev(sid, 12000, "rebuffer_end"),
        ev(sid, 15000, "seek"),
        ev(sid, 15500, "rebuffer_start"),  # after a seek: seek time, not a rebuffer
        ev(sid, 17000, "playing"),
        ev(sid, 20000, "session_end"),
    ]


FULL_EXPECTED = {
    "startup_ms": 1000,
    "play_ms": 12000,
    "rebuffer_ms": 2000,
    "seek_ms": 2000,
    "paused_ms": 3000,
    "watched_ms": 17000,
    "rebuffer_count": 1,
    "seek_count": 1,
    "rebuffer_ratio": 2000 / 17000,
    "avg_bitrate_kbps": 4000.0,
    "bitrate_switches": 1,
    "outcome": "completed",
    "error_code": None,
    "event_count": 13,
    "closed_by": "end",
    "start_ts": T0,
    "end_ts": T0 + 20000,
    "cdn": "cdn-a",
    "country": "FR",
    "device": "tv",
    "isp": "unknown",
}


def vsf_session(sid: str = "s-vsf") -> list[dict[str, Any]]:
    return [
        ev(sid, 0, "session_start", cdn="cdn-b"),
        ev(sid, 1000, "error", error_code="E-minor", fatal=False),
        ev(sid, 3000, "error", error_code="E-DRM", fatal=True),
    ]


VSF_EXPECTED = {
    "outcome": "vsf",
    "startup_ms": None,
    "watched_ms": 3000,
    "play_ms": 0,
    "error_code": "E-DRM",
    "closed_by": "error",
    "event_count": 3,
}


def vpf_session(sid: str = "s-vpf") -> list[dict[str, Any]]:
    return [
        ev(sid, 0, "session_start"),
        ev(sid, 1000, "playing"),
        ev(sid, 4000, "error", error_code="E-NET", fatal=True),
    ]


VPF_EXPECTED = {
    "outcome": "vpf",
    "startup_ms": 1000,
    "play_ms": 3000,
    "watched_ms": 4000,
    "error_code": "E-NET",
    "closed_by": "error",
}


def ebvs_session(sid: str = "s-ebvs") -> list[dict[str, Any]]:
    return [ev(sid, 0, "session_start"), ev(sid, 500, "rebuffer_start"), ev(sid, 2500, "session_end")]


EBVS_EXPECTED = {
    "outcome": "ebvs",
    "startup_ms": None,
    "watched_ms": 2500,
    "rebuffer_ms": 0,
    "rebuffer_count": 0,
    "closed_by": "end",
}


def idle_session(sid: str = "s-idle") -> list[dict[str, Any]]:
    return [ev(sid, 0, "session_start"), ev(sid, 1000, "playing"), ev(sid, 5000, "heartbeat")]


IDLE_EXPECTED = {
    "outcome": "completed",
    "closed_by": "idle",
    "play_ms": 4000,
    "watched_ms": 5000,
    "end_ts": T0 + 5000 + 120_000,
    "event_count": 3,
}


def seek_before_play_session(sid: str = "s-seek0") -> list[dict[str, Any]]:
    """Seeking before the first frame: `resume` goes back to startup, `playing` is the first frame."""
    return [
        ev(sid, 0, "session_start"),
        ev(sid, 500, "seek"),
        ev(sid, 1000, "resume"),
        ev(sid, 2000, "playing"),
        ev(sid, 3000, "session_end"),
    ]


SEEK0_EXPECTED = {
    "startup_ms": 2000,
    "seek_ms": 500,
    "play_ms": 1000,
    "watched_ms": 3000,
    "seek_count": 1,
    "outcome": "completed",
}


SCENARIOS = {
    "full": (full_session, FULL_EXPECTED),
    "vsf": (vsf_session, VSF_EXPECTED),
    "vpf": (vpf_session, VPF_EXPECTED),
    "ebvs": (ebvs_session, EBVS_EXPECTED),
    "idle": (idle_session, IDLE_EXPECTED),
    "seek-before-play": (seek_before_play_session, SEEK0_EXPECTED),
}


def assert_matches(summary: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        assert summary[key] == value, f"{key}: got {summary[key]!r}, expected {value!r}"
