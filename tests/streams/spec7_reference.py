"""A plain, separate reference implementation of SPEC 7 (QoE window metrics) to check the real
pipeline against, written from the SPEC text and independent of ``streams/``.

It sees every session whole (all its events known up front, in arrival order, as
``spec6_reference.summarise`` does) and so only ever counts time that happened: the interval
between two consecutive events goes, split at window boundaries, to the state in force after
the first of them, with the dimensions and bitrate in force at that event; counts go to the
window of the event that causes them; an idle close counts ``ended`` and the outcome at last
event + idle, and adds no time. Percentiles are exact (0-based rank floor(q * (n - 1))).

The result maps ``(window_start, group, dimension values)`` to a record with the SPEC 7 fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

GROUPS: tuple[tuple[str, ...], ...] = (("cdn",), ("isp",), ("device",), ("country",), ("cdn", "country"), ())
CELL_DIMS = ("cdn", "isp", "device", "country")
COUNTS = ("attempts", "plays", "rebuffer_count", "ended", "completed", "vsf", "vpf", "ebvs")
TIMES = ("play_ms", "rebuffer_ms", "watched_ms")
# SPEC 7 record fields compared exactly (integers) and approximately (derived floats).
INT_FIELDS = (*COUNTS, *TIMES, "late_events")
RATIO_FIELDS = ("rebuffer_ratio", "failure_rate", "avg_bitrate_kbps")
PERCENTILE_FIELDS = ("startup_ms_p50", "startup_ms_p95")
# Time in each state goes to these window fields (SPEC 6: watched is everything but paused).
STATE_FIELDS = {
    "startup": ("watched_ms",),
    "playing": ("play_ms", "watched_ms"),
    "rebuffering": ("rebuffer_ms", "watched_ms"),
    "seeking": ("watched_ms",),
    "paused": (),
}

Key = tuple[int, str, tuple[str, ...]]


def group_name(dims: tuple[str, ...]) -> str:
    return "+".join(dims) or "total"


def record_key(record: dict[str, Any]) -> Key:
    """The reference key of a product window record (``window_start``, ``group``, its values)."""
    name = record["group"]
    dims = () if name == "total" else tuple(name.split("+"))
    return record["window_start"], name, tuple(record[d] for d in dims)


@dataclass
class Cell:
    """What one session (or several) put in one window under one set of the four dimensions."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*COUNTS, *TIMES), 0))
    bitrate_sum: float = 0.0  # kbps * ms over playing time with a known bitrate
    bitrate_ms: int = 0
    startups: list[int] = field(default_factory=list)

    def add(self, other: Cell) -> None:
        for k, v in other.counts.items():
            self.counts[k] += v
        self.bitrate_sum += other.bitrate_sum
        self.bitrate_ms += other.bitrate_ms
        self.startups += other.startups


Cells = dict[tuple[int, tuple[str, ...]], Cell]  # (window_start, (cdn, isp, device, country))


def _next_state(state: str, kind: str, played: bool) -> str:
    """SPEC 6 transitions (end and fatal errors are handled by the caller)."""
    if kind == "pause":
        return "paused"
    if kind == "seek":
        return "seeking"
    if state == "startup" and kind == "playing":
        return "playing"
    if state == "playing" and kind == "rebuffer_start":
        return "rebuffering"
    if state == "rebuffering" and kind in ("rebuffer_end", "playing", "resume"):
        return "playing"
    if state == "seeking" and kind in ("rebuffer_end", "playing", "resume"):
        return "playing" if played or kind == "playing" else "startup"
    if state == "paused" and kind in ("resume", "playing"):
        return "playing" if played or kind == "playing" else "startup"
    return state


def session_cells(arrivals: list[dict[str, Any]], window_ms: int, idle_ms: int) -> Cells:
    """One session's contributions to windows, per window and dimension values in force."""
    seen: set[str] = set()
    unique = []
    for e in arrivals:
        if e["event_id"] not in seen:
            seen.add(e["event_id"])
            unique.append(e)
    events = [e for _, e in sorted(enumerate(unique), key=lambda p: (p[1]["ts"], p[0]))]
    cells: Cells = {}

    def cell(ts: int, dims: dict[str, str]) -> Cell:
        values = tuple(dims.get(d, "unknown") for d in CELL_DIMS)
        return cells.setdefault((ts - ts % window_ms, values), Cell())

    def spend(start: int, end: int, state: str, dims: dict[str, str], bitrate: float | None) -> None:
        if end <= start or not STATE_FIELDS[state]:
            return
        # each window gets the overlap of [start, end) with [ws, ws + window_ms)
        for ws in range(start - start % window_ms, end, window_ms):
            overlap = min(end, ws + window_ms) - max(start, ws)
            c = cell(ws, dims)
            for f in STATE_FIELDS[state]:
                c.counts[f] += overlap
            if state == "playing" and bitrate is not None:
                c.bitrate_sum += bitrate * overlap
                c.bitrate_ms += overlap

    def close(ts: int, dims: dict[str, str], outcome: str) -> None:
        c = cell(ts, dims)
        c.counts["ended"] += 1
        c.counts[outcome] += 1

    state, played = "startup", False
    dims: dict[str, str] = {}
    bitrate: float | None = None
    start = prev = events[0]["ts"]
    for i, e in enumerate(events):
        t = e["ts"]
        if t - prev > idle_ms:
            break  # the session closed idle before this event; later events are not its own
        spend(prev, t, state, dims, bitrate)
        prev = t
        for d, v in e.items():
            if d in CELL_DIMS and isinstance(v, str) and v:
                dims[d] = v
        rate = e.get("to_kbps") if e["type"] == "bitrate_change" else None
        rate = e.get("bitrate_kbps") if rate is None else rate
        if rate is not None:
            bitrate = float(rate)
        if i == 0:
            cell(t, dims).counts["attempts"] += 1
        fatal = e["type"] == "error" and e.get("fatal") is True
        if fatal or e["type"] == "session_end":
            close(t, dims, ("vpf" if played else "vsf") if fatal else ("completed" if played else "ebvs"))
            return cells
        nxt = _next_state(state, e["type"], played)
        if state == "playing" and nxt == "rebuffering":
            cell(t, dims).counts["rebuffer_count"] += 1
        if nxt == "playing" and not played:
            played = True
            c = cell(t, dims)
            c.counts["plays"] += 1
            c.startups.append(t - start)
        state = nxt
    close(prev + idle_ms, dims, "completed" if played else "ebvs")  # idle: no time after prev
    return cells


def _percentile(values: list[int], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[int(q * (len(ordered) - 1))])


def _record(ws: int, window_ms: int, name: str, values: tuple[str, ...], c: Cell) -> dict[str, Any]:
    n = c.counts
    dims = () if name == "total" else name.split("+")
    return {
        "window_start": ws,
        "window_end": ws + window_ms,
        "group": name,
        **dict(zip(dims, values, strict=True)),
        **n,
        "late_events": 0,
        "rebuffer_ratio": n["rebuffer_ms"] / n["watched_ms"] if n["watched_ms"] else 0.0,
        "failure_rate": (n["vsf"] + n["vpf"]) / n["ended"] if n["ended"] else 0.0,
        "avg_bitrate_kbps": c.bitrate_sum / c.bitrate_ms if c.bitrate_ms else None,
        "startup_ms_p50": _percentile(c.startups, 0.5),
        "startup_ms_p95": _percentile(c.startups, 0.95),
    }


def windows(sessions: Iterable[list[dict[str, Any]]], window_ms: int, idle_ms: int) -> dict[Key, dict[str, Any]]:
    """SPEC 7 records of all sessions (each given as its events in arrival order)."""
    cells: Cells = {}
    for arrivals in sessions:
        for where, c in session_cells(arrivals, window_ms, idle_ms).items():
            cells.setdefault(where, Cell()).add(c)
    groups: dict[Key, Cell] = {}
    for (ws, values), c in cells.items():
        by_dim = dict(zip(CELL_DIMS, values, strict=True))
        for dims in GROUPS:
            key = (ws, group_name(dims), tuple(by_dim[d] for d in dims))
            groups.setdefault(key, Cell()).add(c)
    return {key: _record(key[0], window_ms, key[1], key[2], c) for key, c in groups.items()}


def is_empty(record: dict[str, Any]) -> bool:
    """A record that says nothing happened (the product may report empty windows)."""
    return (
        all(record.get(f, 0) == 0 for f in INT_FIELDS)
        and record.get("avg_bitrate_kbps") is None
        and record.get("startup_ms_p50") is None
    )


def differences(
    got: dict[Key, dict[str, Any]], expected: dict[Key, dict[str, Any]], sketch_rel: float = 0.01
) -> list[str]:
    """Every field where the product's latest records differ from the reference (empty when
    they agree). A key only one side has counts as a difference unless its record is empty."""
    out: list[str] = []
    for key in sorted(set(got) | set(expected)):
        g, e = got.get(key), expected.get(key)
        if g is None or e is None:
            present = g if e is None else e
            assert present is not None
            if not is_empty(present):
                side = "product only" if e is None else "reference only"
                fields = {f: present.get(f) for f in (*TIMES, *COUNTS) if present.get(f)}
                out.append(f"{key}: {side} {fields}")
            continue
        for f in INT_FIELDS:
            if g.get(f) != e[f]:
                out.append(f"{key} {f}: product {g.get(f)!r} reference {e[f]!r}")
        for f in RATIO_FIELDS:
            if not _close(g.get(f), e[f], 1e-9):
                out.append(f"{key} {f}: product {g.get(f)!r} reference {e[f]!r}")
        for f in PERCENTILE_FIELDS:
            if not _close(g.get(f), e[f], sketch_rel):
                out.append(f"{key} {f}: product {g.get(f)!r} reference {e[f]!r}")
    return out


def _close(got: Any, want: float | None, rel: float) -> bool:
    if want is None or got is None:
        return got is None and want is None
    return bool(abs(got - want) <= rel * abs(want) + 1e-3)


def latest(records: Iterable[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """The record in force per window and group: the highest ``revision`` (the later arrival
    among equal ones, and plain arrival order when records carry no revision)."""
    out: dict[Key, dict[str, Any]] = {}
    for r in records:
        key = record_key(r)
        old = out.get(key)
        if old is None or r.get("revision", 0) >= old.get("revision", 0):
            out[key] = r
    return out


def session_sums(records: dict[Key, dict[str, Any]], device: str) -> dict[str, int]:
    """Window sums of play/rebuffer/watched time of the ``device`` group (a session of its own
    when every session has a device value nobody else uses)."""
    sums = dict.fromkeys(TIMES, 0)
    for (_, name, values), r in records.items():
        if name == "device" and values == (device,):
            for f in TIMES:
                sums[f] += r[f]
    return sums
