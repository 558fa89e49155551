"""Tumbling event-time window accumulators (SPEC 7 and 8), per partition and mergeable.

A window aggregate is a plain dict of counters plus sketches, keyed by ``(window_start, group
key)``. Partial aggregates from several partitions merge by addition, so the merger can combine
them exactly. A group key is a JSON array, ``["cdn", "oca-7"]``: whatever characters a
dimension value holds, it cannot be confused with another key or fail to split back.
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.sketch import Sketch

QOE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("cdn",),
    ("isp",),
    ("device",),
    ("country",),
    ("cdn", "country"),
    (),
)
SERVICE_GROUPS: tuple[tuple[str, ...], ...] = (("service",), ("service", "route"))
QOE_COUNTERS = (
    "attempts",
    "plays",
    "rebuffer_count",
    "ended",
    "completed",
    "vsf",
    "vpf",
    "ebvs",
    "play_ms",
    "rebuffer_ms",
    "watched_ms",
    "bitrate_sum",
    "bitrate_ms",
    "late_events",
)
# Counters published as they are; bitrate_sum/bitrate_ms only feed avg_bitrate_kbps.
QOE_RECORD_COUNTS = tuple(f for f in QOE_COUNTERS if not f.startswith("bitrate_"))
SERVICE_COUNTERS = ("requests", "errors", "late_events", "1xx", "2xx", "3xx", "4xx", "5xx")
SPAN_FIELDS = {
    "playing": ("play_ms", "watched_ms"),
    "rebuffering": ("rebuffer_ms", "watched_ms"),
    "startup": ("watched_ms",),
    "seeking": ("watched_ms",),
    "paused": (),
}


def window_start(ts: int, size_ms: int) -> int:
    return ts - ts % size_ms


def encode_key(parts: tuple[str, ...] | list[str]) -> str:
    return orjson.dumps(list(parts)).decode()


def decode_key(key: str) -> tuple[str, ...]:
    return tuple(orjson.loads(key))


def group_keys(groups: tuple[tuple[str, ...], ...], dims: dict[str, str]) -> list[str]:
    return [encode_key(("+".join(g) or "total", *(dims[d] for d in g))) for g in groups]


def group_fields(key: str) -> dict[str, str]:
    """The record fields of a group key: ``{"group": "cdn+country", "cdn": ..., "country": ...}``."""
    name, *values = decode_key(key)
    dims = [] if name == "total" else name.split("+")
    return {"group": name, **dict(zip(dims, values, strict=True))}


class WindowSet:
    """Open windows of one partition: ``{window_start: {group_key: aggregate}}``."""

    def __init__(self, size_ms: int, counters: tuple[str, ...], sketches: tuple[str, ...]) -> None:
        self.size_ms = size_ms
        self.counters = counters
        self.sketch_fields = sketches
        self.windows: dict[int, dict[str, dict[str, Any]]] = {}

    def agg(self, ws: int, key: str) -> dict[str, Any]:
        groups = self.windows.setdefault(ws, {})
        agg = groups.get(key)
        if agg is None:
            agg = groups[key] = dict.fromkeys(self.counters, 0)
            for name in self.sketch_fields:
                agg[name] = Sketch()
        return agg

    def pop_closed(self, watermark: int) -> list[tuple[int, dict[str, dict[str, Any]]]]:
        """Remove and return windows whose end is at or before ``watermark``, oldest first."""
        closed = sorted(ws for ws in self.windows if ws + self.size_ms <= watermark)
        return [(ws, self.windows.pop(ws)) for ws in closed]

    def to_dict(self) -> dict[str, Any]:
        return {str(ws): {k: encode_agg(a) for k, a in groups.items()} for ws, groups in self.windows.items()}

    def load(self, raw: dict[str, Any]) -> None:
        self.windows = {int(ws): {k: decode_agg(a) for k, a in g.items()} for ws, g in raw.items()}


def encode_agg(agg: dict[str, Any]) -> dict[str, Any]:
    return {k: v.to_dict() if isinstance(v, Sketch) else v for k, v in agg.items()}


def decode_agg(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: Sketch.from_dict(v) if isinstance(v, dict) else v for k, v in raw.items()}


def merge_agg(into: dict[str, Any], other: dict[str, Any]) -> None:
    for k, v in other.items():
        if isinstance(v, Sketch):
            if k not in into:
                into[k] = Sketch()
            into[k].merge(v)
        else:
            into[k] = into.get(k, 0) + v


QOE_DIMS = ("cdn", "isp", "device", "country")


class QoeWindows(WindowSet):
    """Receives session contributions (see streams.session.Contributions) and splits time at
    window boundaries. While a window is open it keeps one cell per combination of the four
    dimensions (one dict update per contribution); the six groups are built when it closes.

    Closed windows stay here, as cells, for as long as a contribution can still reach them
    (:meth:`expire`): an interval whose later event comes after a window closed still counts in
    it (SPEC 7, only time that happened), and the window is then reported again
    (:meth:`pop_revised`). ``frontier`` is the partition's: every window ending at or before it
    is closed."""

    def __init__(self, size_ms: int) -> None:
        super().__init__(size_ms, QOE_COUNTERS, ("startup_ms",))
        self.cells: dict[int, dict[tuple[str, ...], dict[str, Any]]] = self.windows  # type: ignore[assignment]
        self.closed: dict[int, dict[tuple[str, ...], dict[str, Any]]] = {}
        self.revised: set[int] = set()
        self.frontier: int | None = None
        self.beyond_horizon = 0  # contributions to windows no longer kept (none by construction)

    def _new_cell(self) -> dict[str, Any]:
        agg: dict[str, Any] = dict.fromkeys(self.counters, 0)
        agg["startup_ms"] = Sketch()
        return agg

    def cell(self, ws: int, dims: tuple[str, ...]) -> dict[str, Any]:
        frontier = self.frontier
        if frontier is None or ws >= frontier:
            cells = self.windows.setdefault(ws, {})
        else:
            found = self.closed.get(ws)
            if found is None:
                self.beyond_horizon += 1
                return self._new_cell()  # counted, then dropped
            cells = found  # type: ignore[assignment]
            self.revised.add(ws)
        agg = cells.get(dims)  # type: ignore[call-overload]
        if agg is None:
            agg = cells[dims] = self._new_cell()  # type: ignore[index]
        return agg

    def span(self, start: int, end: int, state: str, dims: tuple[str, ...], bitrate: float | None) -> None:
        fields = SPAN_FIELDS.get(state, ())
        if not fields:
            return
        size = self.size_ms
        t = start
        while t < end:
            ws = t - t % size
            piece = min(end, ws + size) - t
            agg = self.cell(ws, dims)
            for f in fields:
                agg[f] += piece
            if bitrate is not None and state == "playing":
                agg["bitrate_sum"] += bitrate * piece
                agg["bitrate_ms"] += piece
            t += piece

    def count(self, ts: int, field: str, dims: tuple[str, ...], value: float = 1) -> None:
        agg = self.cell(ts - ts % self.size_ms, dims)
        if field == "startup_ms":
            agg["startup_ms"].add(value)
        else:
            agg[field] += value

    def _rollup(self, cells: dict[tuple[str, ...], dict[str, Any]]) -> dict[str, dict[str, Any]]:
        groups: dict[str, dict[str, Any]] = {encode_key(("total",)): self._new_cell()}
        for dims, agg in cells.items():
            for key in group_keys(QOE_GROUPS, dict(zip(QOE_DIMS, dims, strict=True))):
                into = groups.get(key)
                if into is None:
                    into = groups[key] = self._new_cell()
                merge_agg(into, agg)
        return groups

    def pop_closed(self, watermark: int) -> list[tuple[int, dict[str, dict[str, Any]]]]:
        """Windows ending at or before ``watermark``, rolled up into the SPEC 7 groups (total
        always present), oldest first. Their cells move to ``closed`` for later revisions."""
        out = []
        for ws in sorted(ws for ws in self.windows if ws + self.size_ms <= watermark):
            cells = self.cells.pop(ws)
            self.closed[ws] = cells
            self.revised.discard(ws)
            out.append((ws, self._rollup(cells)))
        return out

    def pop_revised(self) -> list[tuple[int, dict[str, dict[str, Any]]]]:
        """Closed windows that received contributions since they were last reported."""
        out = [(ws, self._rollup(self.closed[ws])) for ws in sorted(self.revised) if ws in self.closed]
        self.revised.clear()
        return out

    def expire(self, horizon: int) -> None:
        """Forget closed windows ending at or before ``horizon``: nothing can reach them now."""
        for ws in [ws for ws in self.closed if ws + self.size_ms <= horizon]:
            del self.closed[ws]
            self.revised.discard(ws)

    def oldest_open_to_contributions(self) -> int | None:
        """The start of the oldest window a contribution can still change."""
        if self.closed:
            return min(self.closed)
        return self.frontier

    @staticmethod
    def _encode_cells(windows: dict[int, dict[tuple[str, ...], dict[str, Any]]]) -> dict[str, Any]:
        return {str(ws): {encode_key(k): encode_agg(a) for k, a in cells.items()} for ws, cells in windows.items()}

    @staticmethod
    def _decode_cells(raw: dict[str, Any]) -> dict[int, dict[tuple[str, ...], dict[str, Any]]]:
        return {int(ws): {decode_key(k): decode_agg(a) for k, a in cells.items()} for ws, cells in raw.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "open": self._encode_cells(self.cells),
            "closed": self._encode_cells(self.closed),
            "revised": sorted(self.revised),
            "frontier": self.frontier,
            "beyond_horizon": self.beyond_horizon,
        }

    def load(self, raw: dict[str, Any]) -> None:
        self.windows = self._decode_cells(raw["open"])  # type: ignore[assignment]
        self.cells = self.windows  # type: ignore[assignment]
        self.closed = self._decode_cells(raw["closed"])
        self.revised = set(raw["revised"])
        self.frontier = raw["frontier"]
        self.beyond_horizon = raw["beyond_horizon"]


class ServiceWindows(WindowSet):
    def __init__(self, size_ms: int) -> None:
        super().__init__(size_ms, SERVICE_COUNTERS, ("latency_ms",))

    def add(
        self,
        ws: int,
        dims: dict[str, str],
        error: bool,
        status: int | None,
        latency: float | None,
        late: bool,
    ) -> None:
        for key in group_keys(SERVICE_GROUPS, dims):
            agg = self.agg(ws, key)
            agg["requests"] += 1
            agg["late_events"] += late
            if error:
                agg["errors"] += 1
            if status is not None:
                agg[f"{status // 100}xx"] += 1
            if latency is not None:
                agg["latency_ms"].add(latency)


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _q(sketch: Sketch, q: float) -> float | None:
    value = sketch.quantile(q)
    return None if value is None else round(value, 3)


def qoe_record(ws: int, size_ms: int, key: str, agg: dict[str, Any]) -> dict[str, Any]:
    """The SPEC 7 window record of one group."""
    rec: dict[str, Any] = {"window_start": ws, "window_end": ws + size_ms, **group_fields(key)}
    for f in QOE_RECORD_COUNTS:
        rec[f] = int(agg[f])
    startup = agg["startup_ms"]
    rec["startup_ms_p50"] = _q(startup, 0.5)
    rec["startup_ms_p95"] = _q(startup, 0.95)
    rec["rebuffer_ratio"] = _ratio(agg["rebuffer_ms"], agg["watched_ms"])
    rec["failure_rate"] = _ratio(agg["vsf"] + agg["vpf"], agg["ended"])
    rec["avg_bitrate_kbps"] = _ratio(agg["bitrate_sum"], agg["bitrate_ms"]) if agg["bitrate_ms"] else None
    return rec


def service_record(ws: int, size_ms: int, key: str, agg: dict[str, Any]) -> dict[str, Any]:
    """The SPEC 8 window record of one group."""
    rec: dict[str, Any] = {"window_start": ws, "window_end": ws + size_ms, **group_fields(key)}
    rec["requests"] = int(agg["requests"])
    rec["errors"] = int(agg["errors"])
    rec["error_rate"] = _ratio(agg["errors"], agg["requests"])
    lat = agg["latency_ms"]
    rec["latency_ms_p50"] = _q(lat, 0.5)
    rec["latency_ms_p95"] = _q(lat, 0.95)
    rec["latency_ms_p99"] = _q(lat, 0.99)
    rec["by_status"] = {c: int(agg[c]) for c in ("1xx", "2xx", "3xx", "4xx", "5xx")}
    rec["late_events"] = int(agg["late_events"])
    return rec


RECORD_BUILDERS = {"qoe": qoe_record, "service": service_record}
