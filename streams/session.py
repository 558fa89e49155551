"""The SPEC 6 session state machine, over events already put in ``ts`` order.

A :class:`Session` applies one event at a time and reports what it contributes to windows
through a :class:`Contributions` sink: spans of time in a state (``span``) and counts at an
instant (``count``), each with the dimension values in force. Summary times and window time
accrue the same way: between consecutive events, once the later one is known, and never after
the last one (SPEC 7: only time that happened counts), so a session's window sums always equal
its summary's times. ``accrue_to`` may credit windows up to a window end before the next event is
applied, when that event is already known to come later.
"""

from __future__ import annotations

from typing import Any, Protocol

from playscope.events import DIMENSIONS, UNKNOWN

_DIMENSION_SET = frozenset(DIMENSIONS)
_UNKNOWN_DIMS = (UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN)

STARTUP, PLAYING, REBUFFERING, SEEKING, PAUSED, ENDED = (
    "startup",
    "playing",
    "rebuffering",
    "seeking",
    "paused",
    "ended",
)
WATCHED_STATES = frozenset({STARTUP, PLAYING, REBUFFERING, SEEKING})
TIME_FIELDS = {PLAYING: "play_ms", REBUFFERING: "rebuffer_ms", SEEKING: "seek_ms", PAUSED: "paused_ms"}


class Contributions(Protocol):
    def span(self, start: int, end: int, state: str, dims: tuple[str, ...], bitrate: float | None) -> None:
        """Time ``[start, end)`` spent in ``state``."""

    def count(self, ts: int, field: str, dims: tuple[str, ...], value: float = 1) -> None:
        """A count (or a sample, for ``startup_ms``) attributed to the instant ``ts``."""


class NoContributions:
    def span(self, start: int, end: int, state: str, dims: tuple[str, ...], bitrate: float | None) -> None:
        pass

    def count(self, ts: int, field: str, dims: tuple[str, ...], value: float = 1) -> None:
        pass


def _transition(state: str, kind: str, played: bool, fatal: bool) -> str:
    """SPEC 6 transition table; events not listed leave the state unchanged."""
    if state == ENDED:
        return ENDED
    if kind == "session_end" or (kind == "error" and fatal):
        return ENDED
    if kind == "pause":
        return PAUSED
    if kind == "seek":
        return SEEKING
    if state == STARTUP and kind == "playing":
        return PLAYING
    if state == PLAYING and kind == "rebuffer_start":
        return REBUFFERING
    if state == REBUFFERING and kind in ("rebuffer_end", "playing", "resume"):
        return PLAYING
    if state == SEEKING and kind in ("rebuffer_end", "playing", "resume"):
        return PLAYING if played or kind == "playing" else STARTUP
    if state == PAUSED and kind in ("resume", "playing"):
        return PLAYING if played or kind == "playing" else STARTUP
    return state


class Session:
    """One playback session's running state (serialisable with to_dict / from_dict)."""

    FIELDS = (
        "bitrate",
        "bitrate_ms",
        "bitrate_sum",
        "closed_by",
        "counts",
        "dims",
        "end_ts",
        "error_code",
        "event_count",
        "first_play_ts",
        "last_ts",
        "played",
        "pos",
        "sid",
        "start_ts",
        "state",
        "switches",
        "times",
    )
    __slots__ = (*FIELDS, "wdims")

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.state = STARTUP
        self.start_ts: int | None = None
        self.first_play_ts: int | None = None
        self.last_ts = 0
        self.pos = 0  # window time accrued up to here (>= last_ts: up to a window end when the next event is known)
        self.played = False
        self.dims: dict[str, str] = {}
        self.bitrate: float | None = None
        self.bitrate_sum = 0.0  # kbps * ms over playing time with a known bitrate
        self.bitrate_ms = 0
        self.switches = 0
        self.times = {"startup_ms": 0, "play_ms": 0, "rebuffer_ms": 0, "seek_ms": 0, "paused_ms": 0}
        self.counts = {"rebuffer_count": 0, "seek_count": 0}
        self.event_count = 0
        self.error_code: str | None = None
        self.closed_by: str | None = None
        self.end_ts: int | None = None
        self.wdims = _UNKNOWN_DIMS  # window_dims(), kept up to date by _update_dims

    # -- applying events -------------------------------------------------------------------
    def window_dims(self) -> tuple[str, str, str, str]:
        """(cdn, isp, device, country) in force: the dimensions QoE windows group by."""
        return self.wdims

    def _compute_wdims(self) -> tuple[str, str, str, str]:
        d = self.dims
        return (d.get("cdn", UNKNOWN), d.get("isp", UNKNOWN), d.get("device", UNKNOWN), d.get("country", UNKNOWN))

    def accrue_to(self, ts: int, sink: Contributions) -> None:
        """Credit window time in the current state up to ``ts``, the next event's instant."""
        if ts > self.pos and self.state != ENDED:
            sink.span(self.pos, ts, self.state, self.wdims, self.bitrate)
            self.pos = ts

    def apply(self, event: dict[str, Any], sink: Contributions) -> None:
        """Apply one event (``ts`` not before the previous one). Ended sessions ignore events."""
        if self.state == ENDED:
            return
        ts = int(event["ts"])
        kind = event["type"]
        if self.start_ts is None:
            self.start_ts = self.last_ts = self.pos = ts
            self._update_dims(event)
            sink.count(ts, "attempts", self.wdims)
        else:
            self._accrue_summary(ts)
            self.accrue_to(ts, sink)
            self._update_dims(event)
        self.event_count += 1
        self._update_bitrate(event, kind)
        before = self.state
        fatal = kind == "error" and bool(event.get("fatal"))
        after = _transition(before, kind, self.played, fatal)
        if before == STARTUP and after == PLAYING and not self.played:
            self.played = True
            self.first_play_ts = ts
            sink.count(ts, "plays", self.wdims)
            sink.count(ts, "startup_ms", self.wdims, ts - self.start_ts)
        if before == PLAYING and after == REBUFFERING:
            self.counts["rebuffer_count"] += 1
            sink.count(ts, "rebuffer_count", self.wdims)
        if kind == "seek":
            self.counts["seek_count"] += 1
        if after == PLAYING and not self.played:  # e.g. seeking -> playing on a `playing` event
            self.played = True
            self.first_play_ts = ts
            sink.count(ts, "plays", self.wdims)
            sink.count(ts, "startup_ms", self.wdims, ts - self.start_ts)
        self.last_ts = ts
        if after == ENDED:
            if fatal:
                self.error_code = None if event.get("error_code") is None else str(event["error_code"])
            self.state = after
            self._close(ts, "error" if fatal else "end", fatal, sink)
        else:
            self.state = after

    def close_idle(self, idle_ms: int, sink: Contributions) -> None:
        """Close after idleness: the closing instant is last event + idle, no time accrues after it."""
        self.state = ENDED
        self._close(self.last_ts + idle_ms, "idle", False, sink)

    def _close(self, end_ts: int, closed_by: str, fatal: bool, sink: Contributions) -> None:
        self.closed_by = closed_by
        self.end_ts = end_ts
        dims = self.wdims
        sink.count(end_ts, "ended", dims)
        sink.count(end_ts, self.outcome(fatal), dims)

    def outcome(self, fatal: bool | None = None) -> str:
        if fatal is None:
            fatal = self.closed_by == "error"
        if fatal:
            return "vpf" if self.played else "vsf"
        return "completed" if self.played else "ebvs"

    def _accrue_summary(self, ts: int) -> None:
        elapsed = ts - self.last_ts
        if elapsed <= 0:
            return
        if self.state == STARTUP:
            self.times["startup_ms"] += elapsed
        elif self.state in TIME_FIELDS:
            self.times[TIME_FIELDS[self.state]] += elapsed
            if self.state == PLAYING and self.bitrate is not None:
                self.bitrate_sum += self.bitrate * elapsed
                self.bitrate_ms += elapsed

    def _update_dims(self, event: dict[str, Any]) -> None:
        if _DIMENSION_SET.isdisjoint(event):
            return
        dims = self.dims
        changed = False
        for dim in DIMENSIONS:
            value = event.get(dim)
            if isinstance(value, str) and value and dims.get(dim) != value:
                dims[dim] = value
                changed = True
        if changed:
            self.wdims = self._compute_wdims()

    def _update_bitrate(self, event: dict[str, Any], kind: str) -> None:
        new = event.get("to_kbps") if kind == "bitrate_change" else None
        if new is None:
            new = event.get("bitrate_kbps")
        if new is None or isinstance(new, bool) or not isinstance(new, int | float):
            return
        if self.bitrate is not None and float(new) != self.bitrate:
            self.switches += 1
        self.bitrate = float(new)

    # -- output ----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The SPEC 6 session summary (for a closed session)."""
        t = self.times
        watched = t["startup_ms"] + t["play_ms"] + t["rebuffer_ms"] + t["seek_ms"]
        start = self.start_ts or 0
        doc: dict[str, Any] = {
            "session_id": self.sid,
            "start_ts": start,
            "end_ts": self.end_ts if self.end_ts is not None else self.last_ts,
            "startup_ms": None if self.first_play_ts is None else self.first_play_ts - start,
            "play_ms": t["play_ms"],
            "rebuffer_ms": t["rebuffer_ms"],
            "seek_ms": t["seek_ms"],
            "paused_ms": t["paused_ms"],
            "watched_ms": watched,
            "rebuffer_count": self.counts["rebuffer_count"],
            "seek_count": self.counts["seek_count"],
            "rebuffer_ratio": t["rebuffer_ms"] / watched if watched else 0.0,
            "avg_bitrate_kbps": self.bitrate_sum / self.bitrate_ms if self.bitrate_ms else None,
            "bitrate_switches": self.switches,
            "outcome": self.outcome(),
            "error_code": self.error_code,
            "event_count": self.event_count,
            "closed_by": self.closed_by,
        }
        for dim in DIMENSIONS:
            doc[dim] = self.dims.get(dim, UNKNOWN)
        return doc

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.FIELDS}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Session:
        session = cls(raw["sid"])
        for key in cls.FIELDS:
            setattr(session, key, raw[key])
        session.wdims = session._compute_wdims()
        return session
