"""Tumbling event-time window accumulators (SPEC 7 and 8), per partition and mergeable.

A window aggregate is a plain dict of counters plus sketches, keyed by ``(window_start, group
key)``. Partial aggregates from several partitions merge by addition, so the merger can combine
them exactly. ``GroupKey`` strings are ``group\\x1fvalue\\x1fvalue``.
"""

from __future__ import annotations

from typing import Any

from streams.sketch import Sketch

SEP = "\x1f"
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


def group_keys(groups: tuple[tuple[str, ...], ...], dims: dict[str, str]) -> list[str]:
    return [SEP.join(("+".join(g) or "total", *(dims[d] for d in g))) for g in groups]


def group_fields(key: str) -> dict[str, str]:
    """The record fields of a group key: ``{"group": "cdn+country", "cdn": ..., "country": ...}``."""
    name, *values = key.split(SEP)
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
    dimensions (one dict update per contribution); the six groups are built when it closes."""

    def __init__(self, size_ms: int) -> None:
        super().__init__(size_ms, QOE_COUNTERS, ("startup_ms",))
        self.cells: dict[int, dict[tuple[str, ...], dict[str, Any]]] = self.windows  # type: ignore[assignment]

    def cell(self, ws: int, dims: tuple[str, ...]) -> dict[str, Any]:
        cells = self.windows.setdefault(ws, {})
        agg = cells.get(dims)  # type: ignore[call-overload]
        if agg is None:
            agg = cells[dims] = dict.fromkeys(self.counters, 0)  # type: ignore[index]
            agg["startup_ms"] = Sketch()
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

    def pop_closed(self, watermark: int) -> list[tuple[int, dict[str, dict[str, Any]]]]:
        """Closed windows, their cells rolled up into the SPEC 7 groups (total always present)."""
        out = []
        for ws, cells in super().pop_closed(watermark):
            groups: dict[str, dict[str, Any]] = {"total": {**dict.fromkeys(self.counters, 0), "startup_ms": Sketch()}}
            for dims, agg in cells.items():
                for key in group_keys(QOE_GROUPS, dict(zip(QOE_DIMS, dims, strict=True))):
                    into = groups.get(key)
                    if into is None:
                        into = groups[key] = {**dict.fromkeys(self.counters, 0), "startup_ms": Sketch()}
                    merge_agg(into, agg)
            out.append((ws, groups))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {str(ws): {SEP.join(k): encode_agg(a) for k, a in cells.items()} for ws, cells in self.windows.items()}

    def load(self, raw: dict[str, Any]) -> None:
        self.windows = {
            int(ws): {tuple(k.split(SEP)): decode_agg(a) for k, a in cells.items()}  # type: ignore[misc]
            for ws, cells in raw.items()
        }


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
